"""Compressed DICOM: JPEG 2000, JPEG lossless, JPEG-LS and RLE decode to the
HU of the uncompressed files; undecodable transfer syntaxes are named."""
from __future__ import annotations

import os
import os.path as osp
import shutil
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import (JPEG2000Lossless, JPEGLosslessSV1, MPEG2MPML, RLELossless,
                         ExplicitVRLittleEndian)

from a3d_det.datasets import SeriesError, read_ct_series
from a3d_det.datasets.dicom import SeriesWarning
from tests.helpers import ct_files


CT_SMALL = get_testdata_file('CT_small.dcm')
CT5N = osp.join(osp.dirname(CT_SMALL), 'dicomdirtests', '98892001', 'CT5N')
MR_SMALL = get_testdata_file('MR_small.dcm')


# ------------------------------------------------------------------- tests
def test_jpeg_lossless_sv1_ct_slice_decodes_to_the_original_hu(tmp_path):
    path = str(tmp_path / 'jpeg_lossless.dcm')
    arr = ct_files.write_jpeg_lossless(CT_SMALL, path)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == JPEGLosslessSV1
    series = read_ct_series(path)
    np.testing.assert_array_equal(series.volume[0], ct_files.hu_of(CT_SMALL))
    assert series.notes == []


def test_jpeg_lossless_series_in_any_order(tmp_path):
    d = tmp_path / 's'
    d.mkdir()
    for name in os.listdir(CT5N):
        ct_files.write_jpeg_lossless(osp.join(CT5N, name), str(d / f'x{name}'))
    compressed = read_ct_series(str(d))
    plain = read_ct_series(CT5N)
    np.testing.assert_array_equal(compressed.volume, plain.volume)
    np.testing.assert_array_equal(compressed.z_mm, plain.z_mm)


@pytest.mark.parametrize('syntax', [JPEG2000Lossless, RLELossless])
def test_lossless_syntaxes_decode_exactly(syntax, tmp_path):
    ct_files.twin_series(str(tmp_path / 'p'), str(tmp_path / 'c'), syntax)
    ds = pydicom.dcmread(str(tmp_path / 'c' / sorted(os.listdir(CT5N))[0]))
    assert ds.file_meta.TransferSyntaxUID == syntax
    compressed, plain = read_ct_series(str(tmp_path / 'c')), read_ct_series(str(tmp_path / 'p'))
    assert plain.volume.shape == (5, 64, 64)
    np.testing.assert_array_equal(compressed.volume, plain.volume)
    assert compressed.slice_interval == plain.slice_interval
    assert compressed.sop_instance_uids == plain.sop_instance_uids


def test_jpeg_ls_lossless(tmp_path):
    """pydicom's JPEG-LS lossless file (an MR) retagged as CT: the decoded
    values equal the uncompressed original's."""
    ds = pydicom.dcmread(get_testdata_file('MR_small_jpeg_ls_lossless.dcm'))
    ds.Modality = 'CT'
    ds.save_as(str(tmp_path / 'jls.dcm'))
    series = read_ct_series(str(tmp_path / 'jls.dcm'))
    ref = pydicom.dcmread(MR_SMALL).pixel_array.astype(np.float32)
    np.testing.assert_array_equal(series.volume[0], ref)


def test_real_jpeg2000_ct_files():
    """pydicom's JPEG 2000 CT files (lossless with a signedness mismatch, and
    lossy) are read."""
    for name in ('J2K_pixelrep_mismatch.dcm', '693_J2KI.dcm'):
        path = get_testdata_file(name)
        series = read_ct_series(path)
        ds = pydicom.dcmread(path)
        assert series.volume.shape == (1, int(ds.Rows), int(ds.Columns))
        slope, intercept = float(ds.get('RescaleSlope', 1)), float(ds.get('RescaleIntercept', 0))
        np.testing.assert_array_equal(series.volume[0],
                                      (ds.pixel_array * slope + intercept).astype(np.float32))


def _undecodable(src: str, dst: str) -> None:
    ds = pydicom.dcmread(src)
    ds.PixelData = encapsulate([b'\x00\x00\x01\xb3' + bytes(60)])
    ds['PixelData'].VR = 'OB'
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.save_as(dst, enforce_file_format=True)


def test_undecodable_syntax_is_named_and_skipped(tmp_path):
    d = tmp_path / 's'
    shutil.copytree(CT5N, d)
    name = sorted(os.listdir(d))[1]
    _undecodable(str(d / name), str(d / name))
    with pytest.warns(SeriesWarning) as record:
        series = read_ct_series(str(d))
    assert series.num_slices == 4
    (msg,) = [n for n in series.notes if 'unreadable' in n]
    assert name in msg and 'MPEG2' in msg and MPEG2MPML in msg
    assert any(name in str(w.message) for w in record)


def test_nothing_decodable_is_an_error_naming_the_syntax(tmp_path):
    d = tmp_path / 's'
    d.mkdir()
    for name in os.listdir(CT5N):
        _undecodable(osp.join(CT5N, name), str(d / name))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', SeriesWarning)
        with pytest.raises(SeriesError, match='cannot decode the pixel data of any '
                           r'file: 5 file\(s\) in transfer syntax MPEG2'):
            read_ct_series(str(d))


def test_uncompressed_twin_is_explicit_vr():
    assert pydicom.dcmread(CT_SMALL).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
