"""The DICOM reader's steps, each on its own: select the series, list and
order its frames, decode to HU, measure the slice interval, the affine."""
from __future__ import annotations

import os
import os.path as osp
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from a3d_det.datasets.ct_series import (SeriesError, SeriesWarning, check_positions,
                                        decode_frames, dicom_affine, expand_frames,
                                        list_files, order_frames, read_headers,
                                        select_series, slice_interval)

CT_SMALL = get_testdata_file('CT_small.dcm')
CT5N = osp.join(osp.dirname(CT_SMALL), 'dicomdirtests', '98892001', 'CT5N')


def _frames(path=CT5N):
    notes = []
    datasets, _ = read_headers(list_files(path), notes)
    uid, members = select_series(datasets, path)
    return expand_frames(members, uid, notes), uid, notes


def test_select_series(tmp_path):
    d = tmp_path / 'mixed'
    shutil.copytree(CT5N, d)
    shutil.copy(CT_SMALL, d / 'small.dcm')
    datasets, failed = read_headers(list_files(str(d)), [])
    assert len(datasets) == 6 and failed == []
    small_uid = str(pydicom.dcmread(CT_SMALL).SeriesInstanceUID)
    uid, members = select_series(datasets, str(d), small_uid)
    assert uid == small_uid and [osp.basename(f) for f, _ in members] == ['small.dcm']
    with pytest.raises(SeriesError, match='holds 2 series'):
        select_series(datasets, str(d))


def test_order_frames_along_the_normal():
    frames, uid, notes = _frames()
    shuffled = [frames[i] for i in (3, 0, 4, 1, 2)]
    ordered, positions = order_frames(shuffled, uid, notes)
    z = [float(pydicom.dcmread(fr.file).ImagePositionPatient[2]) for fr in ordered]
    assert z == sorted(z)
    np.testing.assert_allclose(positions, z)
    assert notes == []
    check_positions(ordered, positions, uid)
    with pytest.raises(SeriesError, match='share a position'):
        check_positions(ordered[:2] + ordered[1:2], np.r_[positions[:2], positions[1]],
                        uid)


def test_order_without_positions_uses_instance_number():
    frames, uid, notes = _frames()
    for fr in frames:
        fr.position = None
    with pytest.warns(SeriesWarning, match='InstanceNumber'):
        ordered, positions = order_frames(frames, uid, notes)
    assert positions is None
    assert [int(fr.ds.InstanceNumber) for fr in ordered] == [6, 7, 8, 9, 10]
    assert any('InstanceNumber' in n for n in notes)


def test_decode_frames_to_hu():
    frames, uid, notes = _frames()
    frames, _ = order_frames(frames, uid, notes)
    slices, kept = decode_frames(frames, uid, notes)
    assert kept == [0, 1, 2, 3, 4]
    for fr, hu in zip(frames, slices):
        ds = pydicom.dcmread(fr.file)
        np.testing.assert_array_equal(hu, ds.pixel_array * float(ds.RescaleSlope)
                                      + float(ds.RescaleIntercept))
        assert hu.dtype == np.float32


def test_slice_interval_rules():
    frames, uid, notes = _frames()
    frames, positions = order_frames(frames, uid, notes)
    assert slice_interval(frames, positions, uid, notes) == pytest.approx(2.5)
    assert slice_interval(frames, positions, uid, notes, override=1.0) == 1.0
    # one slice, no positions: SliceThickness
    assert slice_interval(frames[:1], None, uid, notes) == pytest.approx(2.5)
    frames[0].thickness = None
    with pytest.raises(SeriesError, match='slice interval'):
        slice_interval(frames[:1], None, uid, notes)


def test_dicom_affine_maps_pixels_to_patient_positions():
    frames, uid, notes = _frames()
    frames, _ = order_frames(frames, uid, notes)
    affine = dicom_affine(frames, 2.5)
    for k, fr in enumerate(frames):
        ds = pydicom.dcmread(fr.file)
        ipp = np.array(ds.ImagePositionPatient, float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        iop = np.array(ds.ImageOrientationPatient, float)
        row, col = 3, 11    # pixel (row 3, column 11) of slice k
        lps = ipp + col * dc * iop[:3] + row * dr * iop[3:]
        ras = affine @ [col, row, k, 1]
        np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-4)
    assert os.path.isdir(CT5N)
