"""Enhanced (multi-frame) CT: each frame a slice with its own geometry."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless

from a3d_det.datasets import SeriesWarning, read_ct_series
from tests.helpers import ct_files


CT_SMALL = get_testdata_file('CT_small.dcm')
CT5N = osp.join(osp.dirname(CT_SMALL), 'dicomdirtests', '98892001', 'CT5N')
ENHANCED_CT = '1.2.840.10008.5.1.4.1.1.2.1'


def test_two_frames_are_two_slices_with_own_z_and_interval(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 2000, (2, 12, 10))
    # written superior frame first: the reader orders along the normal (+z)
    ct_files.enhanced_ct(tmp_path / 'enh.dcm', frames, [(-50, -60, 32.5), (-50, -60, 30.0)],
                '1.2.3.4.5', spacing=(0.7, 0.6))
    with pytest.warns(SeriesWarning, match='anisotropic'):
        series = read_ct_series(str(tmp_path / 'enh.dcm'))
    assert series.volume.shape == (2, 12, 10)
    np.testing.assert_array_equal(series.volume, frames[::-1].astype(np.float32) - 1024)
    np.testing.assert_allclose(series.z_mm, [30.0, 32.5])
    assert series.slice_interval == pytest.approx(2.5)
    assert series.pixel_spacing == pytest.approx((0.7, 0.6))
    assert series.frames == [1, 0]
    assert [n for n in series.notes if 'anisotropic' not in n] == []


def test_per_frame_rescale_and_oblique_normal(tmp_path):
    frames = np.arange(2 * 4 * 4).reshape(2, 4, 4)
    # rows along +x, columns along (0, cos, sin): normal (0, -sin, cos)
    a = np.deg2rad(20)
    iop = (1, 0, 0, 0, np.cos(a), np.sin(a))
    normal = np.array([0, -np.sin(a), np.cos(a)])
    pos0 = np.array([0.0, 10.0, 5.0])
    positions = [pos0 + 3.0 * normal, pos0]
    ct_files.enhanced_ct(tmp_path / 'e.dcm', frames, positions, '1.2.9', orientation=iop,
                per_frame_rescale=[(2.0, -1000.0), (1.0, -500.0)])
    series = read_ct_series(str(tmp_path / 'e.dcm'))
    np.testing.assert_array_equal(series.volume[0], frames[1] * 1.0 - 500)
    np.testing.assert_array_equal(series.volume[1], frames[0] * 2.0 - 1000)
    np.testing.assert_allclose(series.z_mm, [pos0 @ normal, pos0 @ normal + 3.0])
    assert series.slice_interval == pytest.approx(3.0)


def test_several_multi_frame_files_combine_like_the_single_frame_series(tmp_path):
    ct_files.ct5n_as_enhanced(str(tmp_path / 's'), [[4, 0, 2], [1, 3]])
    enhanced, classic = read_ct_series(str(tmp_path / 's')), read_ct_series(CT5N)
    np.testing.assert_array_equal(enhanced.volume, classic.volume)
    np.testing.assert_allclose(enhanced.z_mm, classic.z_mm)
    assert enhanced.slice_interval == pytest.approx(classic.slice_interval)
    assert enhanced.spacing == pytest.approx(classic.spacing)
    np.testing.assert_allclose(enhanced.affine, classic.affine, atol=1e-6)


def test_enhanced_mixed_with_single_frame_files(tmp_path):
    d = tmp_path / 's'
    ct_files.ct5n_as_enhanced(str(d), [[0, 1, 2]])
    names = sorted(os.listdir(CT5N))
    for i in (3, 4):
        pydicom.dcmread(osp.join(CT5N, names[i])).save_as(str(d / names[i]))
    series = read_ct_series(str(d))
    np.testing.assert_array_equal(series.volume, read_ct_series(CT5N).volume)


def test_compressed_enhanced_ct(tmp_path):
    """An enhanced CT whose frames are RLE-compressed."""
    from pydicom.uid import RLELossless
    ct_files.ct5n_as_enhanced(str(tmp_path / 's'), [[0, 1, 2, 3, 4]], compress=RLELossless)
    ds = pydicom.dcmread(str(tmp_path / 's' / 'enh0.dcm'))
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_array_equal(read_ct_series(str(tmp_path / 's')).volume,
                                  read_ct_series(CT5N).volume)
    assert JPEG2000Lossless  # the J2K twins are in test_dicom_compressed.py


def test_multi_frame_without_functional_groups_is_ordered_by_frame(tmp_path):
    """A multi-frame file with one top-level position and no per-frame
    groups: the frames keep their order, the interval is SpacingBetweenSlices."""
    ds = pydicom.dcmread(osp.join(CT5N, sorted(os.listdir(CT5N))[0]))
    frames = np.stack([ds.pixel_array + 10 * i for i in range(3)]).astype(np.int16)
    ds.NumberOfFrames = 3
    ds.SpacingBetweenSlices = 3.0
    ds.PixelData = frames.tobytes()
    ds.save_as(str(tmp_path / 'mf.dcm'))
    with pytest.warns(SeriesWarning):
        series = read_ct_series(str(tmp_path / 'mf.dcm'))
    assert any('without a position for every frame' in n for n in series.notes)
    assert any('frame number' in n for n in series.notes)
    np.testing.assert_array_equal(series.volume, frames.astype(np.float32) - 1024)
    assert series.slice_interval == 3.0
    np.testing.assert_allclose(series.z_mm, [0, 3, 6])
