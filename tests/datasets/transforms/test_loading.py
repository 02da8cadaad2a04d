"""The multi-slice loaders: from DeepLesion PNGs and from a volume in memory."""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from a3d_det.datasets.deeplesion import write_png_hu
from a3d_det.datasets.transforms import (LoadMultiSliceFromArray, LoadMultiSliceFromFile,
                                         MultiSliceLoading)
from a3d_det.registry import TRANSFORMS

SERIES = '000001_01_01'


@pytest.fixture
def volume_on_disk(tmp_path):
    """A random (9, 6, 8) HU volume and its PNG folder (slices numbered from 1)."""
    vol = np.random.default_rng(0).integers(-1000, 1500, (9, 6, 8)).astype(np.float32)
    for j, hu in enumerate(vol):
        write_png_hu(str(tmp_path / SERIES / f'{j + 1:03d}.png'), hu)
    return vol, str(tmp_path)


@pytest.mark.parametrize('num_slices, target, rule', [
    (3, 2.0, {}), (7, 2.0, {}), (7, None, {}), (5, 0.7, {}),
    (7, 2.0, dict(interpolation='published')), (7, 2.0, dict(native_if_thicker=True))])
@pytest.mark.parametrize('native', [1.25, 2.0, 5.0, math.nan])
@pytest.mark.parametrize('key', [0, 4, 8])
def test_array_and_file_loaders_agree(volume_on_disk, num_slices, target, rule, native, key):
    vol, image_dir = volume_on_disk
    options = dict(num_slices=num_slices, slice_interval=target, **rule)
    from_file = TRANSFORMS.build(dict(type='LoadMultiSliceFromFile', **options))(dict(
        image_dir=image_dir, file_name=f'{SERIES}/{key + 1:03d}.png', slice_interval=native))
    from_array = TRANSFORMS.build(dict(type='LoadMultiSliceFromArray', **options))(dict(
        volume=vol, key_index=key, slice_interval=native))
    np.testing.assert_array_equal(from_array['img'], from_file['img'])
    assert from_array['img'].shape == (6, 8, num_slices)
    for k in ('img_shape', 'ori_shape', 'thickness', 'target_interval'):
        assert from_array[k] == from_file[k], k


def test_array_loader_resamples_to_the_target_interval():
    """Independent check of the rule: slice j holds HU = 10 j; at 1.25 mm, the
    outputs at +-2 mm lie 1.6 slices away, interpolated between slices."""
    vol = np.stack([np.full((2, 3), 10.0 * j) for j in range(9)]).astype(np.float32)
    out = LoadMultiSliceFromArray(num_slices=3)(dict(volume=vol, key_index=4,
                                                     slice_interval=1.25))
    np.testing.assert_allclose(out['img'][0, 0], [24.0, 40.0, 56.0], rtol=1e-6)
    assert out['thickness'] == 1.25 and out['target_interval'] == 2.0
    # At the end of the volume the missing slices fall back to the last one.
    out = LoadMultiSliceFromArray(num_slices=3)(dict(volume=vol, key_index=8,
                                                     slice_interval=1.25))
    np.testing.assert_allclose(out['img'][0, 0], [64.0, 80.0, 80.0], rtol=1e-6)
    # A thickness given with the volume is kept.
    out = LoadMultiSliceFromArray()(dict(volume=vol, key_index=4, slice_interval=1.25,
                                         thickness=2.5))
    assert out['thickness'] == 2.5


def test_both_loaders_take_the_same_arguments():
    assert issubclass(LoadMultiSliceFromFile, MultiSliceLoading)
    assert issubclass(LoadMultiSliceFromArray, MultiSliceLoading)
    assert inspect.signature(LoadMultiSliceFromArray) == inspect.signature(LoadMultiSliceFromFile)


def test_array_loader_errors():
    vol = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(ValueError, match='outside the volume'):
        LoadMultiSliceFromArray()(dict(volume=vol, key_index=3, slice_interval=2.0))
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        LoadMultiSliceFromArray()(dict(volume=vol[0], key_index=0, slice_interval=2.0))
    with pytest.raises(ValueError, match='odd'):
        LoadMultiSliceFromArray(num_slices=4)
