"""DICOM / PNG series reading on pydicom's own test CT files (real data)."""
import os
import os.path as osp
import random
import shutil
import warnings

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from a3d_det.datasets import SeriesError, read_ct_series
from a3d_det.datasets.dicom import SeriesWarning

CT_SMALL = get_testdata_file('CT_small.dcm')
MR_SMALL = get_testdata_file('MR_small.dcm')
CT5N = osp.join(osp.dirname(CT_SMALL), 'dicomdirtests', '98892001', 'CT5N')


def _copy_shuffled(dst: str, seed: int = 0) -> list:
    """Copy CT5N under random names in a random order; return the names."""
    os.makedirs(dst, exist_ok=True)
    srcs = sorted(os.listdir(CT5N))
    random.Random(seed).shuffle(srcs)
    names = []
    for i, s in enumerate(srcs):
        name = f'img_{random.Random(seed + i).randint(0, 10**6):07d}'
        shutil.copy(osp.join(CT5N, s), osp.join(dst, name))
        names.append(name)
    return names


def _expected_ct5n():
    """CT5N read file by file, sorted along z (the slice normal is +z)."""
    dss = [pydicom.dcmread(osp.join(CT5N, f)) for f in os.listdir(CT5N)]
    dss.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                   for ds in dss]).astype(np.float32)
    return dss, hu


def test_ct5n_shuffled_and_renamed_is_ordered_along_the_normal(tmp_path):
    _copy_shuffled(str(tmp_path / 's'))
    series = read_ct_series(str(tmp_path / 's'))
    dss, hu = _expected_ct5n()
    assert series.volume.shape == (5, 16, 16)
    assert series.volume.dtype == np.float32
    np.testing.assert_array_equal(series.volume, hu)
    np.testing.assert_allclose(np.diff(series.z_mm), 2.5, atol=1e-4)
    assert series.slice_interval == pytest.approx(2.5)
    assert series.spacing == pytest.approx(0.488281)
    assert series.sop_instance_uids == [str(ds.SOPInstanceUID) for ds in dss]
    # z ascending = InstanceNumber descending in this series
    assert [int(ds.InstanceNumber) for ds in dss] == [10, 9, 8, 7, 6]
    assert series.series_uid == str(dss[0].SeriesInstanceUID)
    assert series.patient_id == str(dss[0].PatientID)
    info = series.info()
    assert info['n_slices'] == 5 and info['slice_interval'] == pytest.approx(2.5)
    assert series.notes == []


def test_instance_number_fallback(tmp_path):
    d = tmp_path / 's'
    names = _copy_shuffled(str(d), seed=3)
    for n in names:
        ds = pydicom.dcmread(str(d / n))
        del ds.ImagePositionPatient
        ds.save_as(str(d / n))
    with pytest.warns(SeriesWarning, match='InstanceNumber'):
        series = read_ct_series(str(d))
    dss = sorted((pydicom.dcmread(osp.join(CT5N, f)) for f in os.listdir(CT5N)),
                 key=lambda ds: int(ds.InstanceNumber))
    assert series.sop_instance_uids == [str(ds.SOPInstanceUID) for ds in dss]
    # no positions: the slice interval falls back to SliceThickness
    assert series.slice_interval == pytest.approx(2.5)


def test_single_file_ct_small():
    series = read_ct_series(CT_SMALL)
    ds = pydicom.dcmread(CT_SMALL)
    assert series.volume.shape == (1, 128, 128)
    np.testing.assert_array_equal(series.volume[0], ds.pixel_array.astype(np.float32) - 1024)
    assert series.slice_interval == pytest.approx(float(ds.SliceThickness))
    assert series.spacing == pytest.approx(0.661468)
    assert series.sop_instance_uids == [str(ds.SOPInstanceUID)]


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    ds = pydicom.dcmread(CT_SMALL)
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1000
    ds.save_as(str(tmp_path / 'x.dcm'))
    series = read_ct_series(str(tmp_path / 'x.dcm'))
    np.testing.assert_array_equal(series.volume[0],
                                  ds.pixel_array.astype(np.float32) * 2 - 1000)


def test_large_in_plane_size(tmp_path):
    ds = pydicom.dcmread(CT_SMALL)
    big = cv2.resize(ds.pixel_array, (1024, 1024), interpolation=cv2.INTER_NEAREST)
    ds.Rows, ds.Columns = 1024, 1024
    ds.PixelData = big.tobytes()
    ds.save_as(str(tmp_path / 'big'))
    series = read_ct_series(str(tmp_path))
    assert series.volume.shape == (1, 1024, 1024)
    assert series.volume[0, 0, 0] == big[0, 0] - 1024


def test_irregular_increments_warn(tmp_path):
    names = sorted(os.listdir(CT5N))
    os.makedirs(tmp_path / 's')
    for n in names[:2] + names[3:]:  # drop the middle slice
        shutil.copy(osp.join(CT5N, n), tmp_path / 's' / n)
    with pytest.warns(SeriesWarning, match='irregular'):
        series = read_ct_series(str(tmp_path / 's'))
    assert series.num_slices == 4
    assert any('irregular' in n for n in series.notes)


def test_non_dicom_and_unreadable_files_are_skipped_and_counted(tmp_path):
    d = tmp_path / 's'
    _copy_shuffled(str(d))
    (d / 'README.txt').write_text('not a DICOM file')
    (d / 'Thumbs.db').write_bytes(os.urandom(300))
    data = open(osp.join(CT5N, sorted(os.listdir(CT5N))[0]), 'rb').read()
    (d / 'truncated.dcm').write_bytes(data[:200])  # preamble + a few bytes
    (d / 'cut_pixels.dcm').write_bytes(data[:-100])  # header intact, pixels cut
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', SeriesWarning)
        series = read_ct_series(str(d))
    assert series.num_slices == 5
    assert any('skipped 2 non-DICOM' in n for n in series.notes), series.notes
    assert any('2 unreadable' in n for n in series.notes), series.notes


def test_mr_is_refused_naming_its_modality(tmp_path):
    with pytest.raises(SeriesError, match=r'\bMR\b.*not CT'):
        read_ct_series(MR_SMALL)


def test_several_series_listed_and_pickable(tmp_path):
    d = tmp_path / 'mixed'
    _copy_shuffled(str(d))
    shutil.copy(CT_SMALL, d / 'other')
    ct5n_uid = str(pydicom.dcmread(osp.join(CT5N, os.listdir(CT5N)[0])).SeriesInstanceUID)
    small_uid = str(pydicom.dcmread(CT_SMALL).SeriesInstanceUID)
    with pytest.raises(SeriesError, match='2 series') as err:
        read_ct_series(str(d))
    assert ct5n_uid in str(err.value) and small_uid in str(err.value)
    assert '--series' in str(err.value)
    assert read_ct_series(str(d), series_uid=ct5n_uid).num_slices == 5
    assert read_ct_series(str(d), series_uid=small_uid).num_slices == 1
    with pytest.raises(SeriesError, match='no series with UID 1.2.3'):
        read_ct_series(str(d), series_uid='1.2.3')


def test_empty_folder_and_missing_path(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SeriesError, match='empty'):
        read_ct_series(str(tmp_path / 'empty'))
    with pytest.raises(SeriesError, match='no such file'):
        read_ct_series(str(tmp_path / 'nope'))


def test_folder_without_dicom(tmp_path):
    (tmp_path / 'notes.txt').write_text('hello')
    with pytest.warns(SeriesWarning, match='non-DICOM'), \
            pytest.raises(SeriesError, match='no readable DICOM.*notes.txt'):
        read_ct_series(str(tmp_path))


def test_missing_pixel_data(tmp_path):
    d = tmp_path / 's'
    names = _copy_shuffled(str(d))
    ds = pydicom.dcmread(str(d / names[2]))
    del ds.PixelData
    ds.save_as(str(d / names[2]))
    with pytest.raises(SeriesError, match='no pixel data') as err:
        read_ct_series(str(d))
    assert names[2] in str(err.value)


def _write_png_series(d, hu_slices, names):
    os.makedirs(d, exist_ok=True)
    for hu, name in zip(hu_slices, names):
        cv2.imwrite(osp.join(d, name), (hu + 32768).astype(np.uint16))


def test_png_folder(tmp_path):
    rng = np.random.default_rng(0)
    hu = rng.integers(-1024, 2000, size=(4, 20, 24)).astype(np.float32)
    d = str(tmp_path / '000001_01_01')
    # DeepLesion names; written in shuffled order, numbers not zero-padded alike
    _write_png_series(d, hu[[2, 0, 3, 1]], ['103.png', '9.png', '110.png', '010.png'])
    (tmp_path / '000001_01_01' / 'notes.txt').write_text('x')
    with pytest.warns(SeriesWarning, match='non-PNG'):
        series = read_ct_series(d, slice_interval=5.0, spacing=0.8)
    np.testing.assert_array_equal(series.volume, hu)
    np.testing.assert_allclose(series.z_mm, [0, 5, 10, 15])
    assert series.slice_interval == 5.0 and series.spacing == 0.8
    assert [osp.basename(f) for f in series.files] == ['9.png', '010.png', '103.png', '110.png']
    with pytest.raises(SeriesError, match='--slice-interval'):
        read_ct_series(d)


def test_png_folder_refuses_8bit(tmp_path):
    cv2.imwrite(str(tmp_path / '001.png'), np.zeros((8, 8), np.uint8))
    with pytest.raises(SeriesError, match='16-bit'):
        read_ct_series(str(tmp_path), slice_interval=2.0)


def test_slices_of_different_sizes_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / '001.png'), np.full((8, 8), 32768, np.uint16))
    cv2.imwrite(str(tmp_path / '002.png'), np.full((8, 9), 32768, np.uint16))
    with pytest.raises(SeriesError, match='002.png: size .* differs'):
        read_ct_series(str(tmp_path), slice_interval=2.0)


def test_dicomdir_index_is_skipped(tmp_path):
    """A CD/DVD export: the DICOMDIR index beside the series is not a series."""
    d = tmp_path / 's'
    _copy_shuffled(str(d))
    shutil.copy(osp.join(osp.dirname(CT_SMALL), 'dicomdirtests', 'DICOMDIR'), d / 'DICOMDIR')
    with pytest.warns(SeriesWarning, match='not images.*DICOMDIR'):
        series = read_ct_series(str(d))
    assert series.num_slices == 5
