"""The neighbour rule's options against an independent re-implementation of
the published DeepLesion loaders (M3DV/AlignShift,
deeplesion/dataset/DeepLesionDataset_{a3d,tsm,align}.py,
``load_multislice_img_16bit_png``), and the Table-2 configs' loaders."""
from __future__ import annotations

import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from a3d_det.datasets.deeplesion import (load_multislice, neighbour_offsets,
                                         sample_neighbours, write_png_hu)
from a3d_det.registry import DATASETS

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')
INTERVALS = [0.625, 1.0, 1.25, 2.5, 5.0]
NUM = 60        # slices 0..59 of the ramp series
KEY = 30


def published_loader(read, key, slice_intv, num_slice, norm_slice_intv=2.0, align=False):
    """The published rule, restated: weights ``a = frac(r)``, ``b = ceil(r) - r``
    of the first neighbour, reused for neighbour p at ``ceil / floor(r p)``;
    a missing slice steps towards the key; ``align``: native neighbours when
    ``r <= 1`` (DeepLesionDataset_align)."""
    def load(delta):
        delta = int(delta)
        while delta != 0 and read(key + delta) is None:
            delta -= int(np.sign(delta))
        return read(key + delta)

    cur = load(0)
    if np.isnan(slice_intv) or slice_intv < 0:
        return np.stack([cur] * num_slice)
    ims = [cur]
    r = float(norm_slice_intv) / slice_intv
    a, b = r - np.floor(r), np.ceil(r) - r
    for p in range((num_slice - 1) // 2):
        if align and r <= 1.0:
            prev, nxt = load(-(p + 1)), load(p + 1)
        elif a == 0:
            prev, nxt = load(-r * (p + 1)), load(r * (p + 1))
        else:
            i = r * (p + 1)
            prev = a * load(-np.ceil(i)) + b * load(-np.floor(i))
            nxt = a * load(np.ceil(i)) + b * load(np.floor(i))
        ims = [prev] + ims + [nxt]
    return np.stack(ims).astype(np.float32)


def ramp_read(i):
    """Slice i holds the value i (its position), 2 x 2 pixels; 0..NUM-1 exist."""
    return np.full((2, 2), float(i), np.float32) if 0 <= i < NUM else None


def positions_mm(vol, interval):
    return [round((float(v) - KEY) * interval, 4) for v in vol[:, 0, 0]]


def test_published_offsets_spelled_out():
    assert positions_mm(sample_neighbours(ramp_read, KEY, 5.0, 7, interpolation='published'),
                        5.0) == [-7, -2, -2, 0, 2, 2, 7]
    assert positions_mm(sample_neighbours(ramp_read, KEY, 2.5, 7, interpolation='published'),
                        2.5) == [-7, -4.5, -2, 0, 2, 4.5, 7]
    assert positions_mm(sample_neighbours(ramp_read, KEY, 5.0, 7), 5.0) == \
        [-6, -4, -2, 0, 2, 4, 6]
    # AlignShift: native at >= 2 mm, resampled below
    assert positions_mm(sample_neighbours(ramp_read, KEY, 5.0, 7, native_if_thicker=True),
                        5.0) == [-15, -10, -5, 0, 5, 10, 15]
    assert positions_mm(sample_neighbours(ramp_read, KEY, 1.25, 3, native_if_thicker=True),
                        1.25) == [-2, 0, 2]


@pytest.mark.parametrize('num_slices', [3, 7])
@pytest.mark.parametrize('interval', INTERVALS)
def test_published_interpolation_matches_published_loader(interval, num_slices):
    ours = sample_neighbours(ramp_read, KEY, interval, num_slices, interpolation='published')
    ref = published_loader(ramp_read, KEY, interval, num_slices)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize('num_slices', [3, 7])
@pytest.mark.parametrize('interval', INTERVALS)
def test_alignshift_inputs_match_published_align_loader(interval, num_slices):
    ours = sample_neighbours(ramp_read, KEY, interval, num_slices, interpolation='published',
                             native_if_thicker=True)
    ref = published_loader(ramp_read, KEY, interval, num_slices, align=True)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize('interval', INTERVALS)
def test_three_slices_identical_either_way(interval):
    for native in (False, True):
        lin = sample_neighbours(ramp_read, KEY, interval, 3, native_if_thicker=native)
        pub = sample_neighbours(ramp_read, KEY, interval, 3, interpolation='published',
                                native_if_thicker=native)
        np.testing.assert_allclose(lin, pub, atol=1e-5)


@pytest.mark.parametrize('interval', INTERVALS)
def test_linear_is_the_correct_position(interval):
    vol = sample_neighbours(ramp_read, KEY, interval, 7)
    np.testing.assert_allclose(positions_mm(vol, interval), [-6, -4, -2, 0, 2, 4, 6], atol=1e-3)


def test_published_fallback_at_volume_end():
    # key 2 of slices 0..59 at 0.625 mm: r = 3.2, outer neighbours below 0
    # step towards the key, as the published get_slice_name does
    for native in (False, True):
        ours = sample_neighbours(ramp_read, 2, 0.625, 7, interpolation='published',
                                 native_if_thicker=native)
        ref = published_loader(lambda i: ramp_read(i), 2, 0.625, 7, align=native)
        np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_offsets_and_options_validated():
    assert neighbour_offsets(float('nan'), 7, interpolation='published') == [0.0] * 7
    with pytest.raises(ValueError, match='interpolation'):
        neighbour_offsets(1.0, 3, interpolation='cubic')


@pytest.fixture(scope='module')
def ramp_series(tmp_path_factory):
    """Images_png/000001_01_01/NNN.png, slice i at HU 10 * i, slices 0..59."""
    image_dir = str(tmp_path_factory.mktemp('ramp60') / 'Images_png')
    for i in range(NUM):
        write_png_hu(osp.join(image_dir, '000001_01_01', f'{i:03d}.png'),
                     np.full((4, 4), 10.0 * i))
    return image_dir


def test_file_loader_takes_the_options(ramp_series):
    for interval in INTERVALS:
        vol = load_multislice(ramp_series, f'000001_01_01/{KEY:03d}.png', interval, 7,
                              interpolation='published', native_if_thicker=True)
        ref = published_loader(ramp_read, KEY, interval, 7, align=True) * 10
        np.testing.assert_allclose(vol[:, :2, :2], ref, atol=1e-3)


METHODS = ['no_fusion', 'i3d', 'p3d', 'acs', 'tsm', 'alignshift', 'a3d']


@pytest.mark.parametrize('num_slices', [3, 7])
@pytest.mark.parametrize('method', METHODS)
def test_table2_configs_load_the_published_inputs(method, num_slices, ramp_series):
    """Each Table-2 config's loaders (train and test) give the published
    loader's inputs and the native interval as thickness, at every interval."""
    cfg = Config.fromfile(osp.join(CONFIGS, method,
                                   f'{method}_densenet121_{num_slices}slice_deeplesion.py'))
    for loader in ('train_dataloader', 'test_dataloader'):
        ds_cfg = cfg[loader].dataset
        ds_cfg.update(lazy_init=True)
        load = DATASETS.build(ds_cfg).pipeline.transforms[0]
        assert type(load).__name__ == 'LoadMultiSliceFromFile'
        for interval in INTERVALS:
            res = load(dict(image_dir=ramp_series, file_name=f'000001_01_01/{KEY:03d}.png',
                            slice_interval=interval))
            ref = published_loader(ramp_read, KEY, interval, num_slices,
                                   align=method == 'alignshift') * 10
            assert res['img'].shape == (4, 4, num_slices)
            np.testing.assert_allclose(res['img'][0, 0], ref[:, 0, 0], atol=1e-3,
                                       err_msg=f'{loader} at {interval} mm')
            assert res['thickness'] == interval
