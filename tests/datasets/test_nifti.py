"""NIfTI input: any storage orientation gives the DICOM series' slices."""
from __future__ import annotations

import os
import os.path as osp

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from a3d_det.datasets import SeriesError, SeriesWarning, read_ct_series
from tests.helpers import ct_files

CT_SMALL = get_testdata_file('CT_small.dcm')
CT5N = osp.join(osp.dirname(CT_SMALL), 'dicomdirtests', '98892001', 'CT5N')


@pytest.mark.parametrize('name', ['lps_to_ras', 'dcm2niix_rows_flipped', 'ras_plus',
                                  'slices_reversed_axes_permuted'])
@pytest.mark.parametrize('ext', ['.nii', '.nii.gz'])
def test_orientations_give_the_dicom_slices(name, ext, tmp_path):
    cases, hu = ct_files.variants()
    data, affine = cases[name]
    path = ct_files.save_nifti(data, affine, str(tmp_path / f'ct{ext}'), intercept=-1024.0)
    series = read_ct_series(path)
    dicom = read_ct_series(CT5N)
    np.testing.assert_array_equal(series.volume, hu)
    np.testing.assert_array_equal(series.volume, dicom.volume)
    np.testing.assert_allclose(series.z_mm, dicom.z_mm, atol=1e-4)
    assert series.slice_interval == pytest.approx(dicom.slice_interval, abs=1e-5)
    assert series.pixel_spacing == pytest.approx(dicom.pixel_spacing)
    assert series.spacing == pytest.approx(dicom.spacing)
    assert series.input_shape == data.shape
    np.testing.assert_allclose(series.input_affine, affine)


def test_sagittal_storage_is_shown_axial(tmp_path):
    """A volume stored as sagittal slices (voxel axes A, S, R... in any
    order): the axial slices come out rows anterior->posterior, columns
    right->left, ascending along superior."""
    rng = np.random.default_rng(1)
    vol = rng.integers(-1000, 1000, (6, 7, 8)).astype(np.int16)   # axes: P, S, L
    spacing = np.array([0.8, 2.0, 0.9])
    aff = np.zeros((4, 4))
    aff[3, 3] = 1
    aff[1, 0] = -spacing[0]      # axis 0 runs posterior (RAS y decreasing)
    aff[2, 1] = spacing[1]       # axis 1 runs superior
    aff[0, 2] = -spacing[2]      # axis 2 runs patient left (RAS x decreasing)
    aff[:3, 3] = [10, 20, -30]
    path = ct_files.save_nifti(vol, aff, str(tmp_path / 'sag.nii.gz'), intercept=0.0)
    with pytest.warns(SeriesWarning, match='anisotropic'):
        series = read_ct_series(path)
    # expected: [slice (S), row (P), column (L)] = vol axes (1, 0, 2)
    np.testing.assert_array_equal(series.volume, vol.transpose(1, 0, 2).astype(np.float32))
    assert series.slice_interval == pytest.approx(2.0)
    assert series.pixel_spacing == pytest.approx((0.8, 0.9))
    np.testing.assert_allclose(series.z_mm, -30 + 2.0 * np.arange(7))


def test_4d_and_vector_data_are_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.int16), np.eye(4)),
             str(tmp_path / 't.nii.gz'))
    with pytest.raises(SeriesError, match='expected a 3D CT volume.*4D'):
        read_ct_series(str(tmp_path / 't.nii.gz'))
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 1, 3), np.float32), np.eye(4)),
             str(tmp_path / 'v.nii'))
    with pytest.raises(SeriesError, match='non-spatial'):
        read_ct_series(str(tmp_path / 'v.nii'))
    nib.save(nib.Nifti1Image(np.zeros((4, 4), np.int16), np.eye(4)), str(tmp_path / 'p.nii'))
    with pytest.raises(SeriesError, match='2D image'):
        read_ct_series(str(tmp_path / 'p.nii'))
    # one volume in a 4D file is fine
    nib.save(nib.Nifti1Image(np.ones((4, 5, 3, 1), np.int16), np.eye(4)),
             str(tmp_path / 'one.nii'))
    assert read_ct_series(str(tmp_path / 'one.nii')).volume.shape == (3, 5, 4)


def test_not_nifti_and_folder_of_nifti(tmp_path):
    (tmp_path / 'bad.nii.gz').write_bytes(b'not gzip at all')
    with pytest.raises(SeriesError, match='bad.nii.gz: cannot be read as NIfTI'):
        read_ct_series(str(tmp_path / 'bad.nii.gz'))
    with pytest.raises(SeriesError, match='give one .nii'):
        read_ct_series(str(tmp_path))


def test_header_decimals_survive_single_precision(tmp_path):
    """DICOM spacings like 0.7 mm and positions 0.8 mm apart are not exact in
    the NIfTI's single-precision affine; they are read back as the DICOM
    decimals, so lesion sizes and the interval agree with the DICOM series."""
    d = tmp_path / 'dcm'
    d.mkdir()
    for k, name in enumerate(sorted(os.listdir(CT5N))):
        ds = pydicom.dcmread(osp.join(CT5N, name))
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImagePositionPatient = [-72.2, -143.0, -10.3 + 0.8 * k]
        ds.save_as(str(d / name))
    dicom = read_ct_series(str(d))
    data = dicom.volume.transpose(2, 1, 0).astype(np.int16)
    path = ct_files.save_nifti(data, dicom.affine, str(tmp_path / 'x.nii.gz'), 0.0)
    nifti = read_ct_series(path)
    assert nifti.pixel_spacing == (0.7, 0.7) == dicom.pixel_spacing
    assert nifti.slice_interval == pytest.approx(dicom.slice_interval, abs=1e-9)
    np.testing.assert_allclose(nifti.z_mm, dicom.z_mm, atol=1e-6)
    np.testing.assert_array_equal(nifti.volume, dicom.volume)
