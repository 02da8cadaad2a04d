import os
import os.path as osp

import cv2
import numpy as np
import pytest

from a3d_det.datasets.deeplesion import (HU_OFFSET, SliceReadError, load_multislice,
                                         read_png_hu, sample_neighbours, split_file_name,
                                         windowing, write_png_hu)

KEY = '000001_01_01/005.png'


def centre_values(vol):
    return [float(v) for v in vol[:, 0, 0]]


# ramp_tree: slice i has HU 100 * i, slices 1..9, slice 4 missing, key 5.
@pytest.mark.parametrize('interval, expected', [
    (0.625, [100, 180, 500, 820, 900]),   # r = 3.2: interpolated, ends clamp to 1 / 9
    (1.0, [100, 300, 500, 700, 900]),     # r = 2: read directly
    (1.25, [180, 380, 500, 660, 820]),    # slice 4 missing -> 5 in the 3..4 interpolation
    (2.5, [380, 500, 500, 580, 660]),
    (5.0, [500, 500, 500, 540, 580]),
])
def test_resampling_to_2mm(ramp_tree, interval, expected):
    image_dir, _ = ramp_tree
    vol = load_multislice(image_dir, KEY, interval, 5, 2.0)
    assert vol.shape == (5, 6, 8) and vol.dtype == np.float32
    np.testing.assert_allclose(centre_values(vol), expected, atol=1e-3)


@pytest.mark.parametrize('interval', [float('nan'), 0.0, -2.5, None])
def test_unknown_interval_repeats_key_slice(ramp_tree, interval):
    image_dir, _ = ramp_tree
    vol = load_multislice(image_dir, KEY, interval, 3, 2.0)
    assert centre_values(vol) == [500, 500, 500]


def test_native_neighbours_and_volume_ends(ramp_tree):
    image_dir, _ = ramp_tree
    # target None: native neighbours 3, 4 (missing -> 5), 5, 6, 7
    assert centre_values(load_multislice(image_dir, KEY, 5.0, 5, None)) == [300, 500, 500, 600, 700]
    # at the last slice, neighbours beyond it fall back to it
    assert centre_values(load_multislice(image_dir, '000001_01_01/009.png', 1.0, 5)) == \
        [500, 700, 900, 900, 900]
    # at the first slice; DL_info's File_name form is accepted too
    assert centre_values(load_multislice(image_dir, '000001_01_01_001.png', 1.0, 5)) == \
        [100, 100, 100, 300, 500]


def test_each_slice_decoded_once():
    reads = []

    def read(i):
        reads.append(i)
        return np.full((2, 2), float(i), np.float32) if 0 <= i < 40 else None

    vol = sample_neighbours(read, 20, 0.8, 7, 2.0)  # r = 2.5: 11 slices
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 11
    np.testing.assert_allclose(vol[:, 0, 0], [12.5, 15, 17.5, 20, 22.5, 25, 27.5])


def test_missing_key_and_bad_arguments(ramp_tree):
    image_dir, _ = ramp_tree
    with pytest.raises(SliceReadError, match='004.png'):
        load_multislice(image_dir, '000001_01_01/004.png', 1.0, 3)
    with pytest.raises(SliceReadError, match='000009_01_01'):
        load_multislice(image_dir, '000009_01_01/005.png', 1.0, 3)
    with pytest.raises(ValueError, match='odd'):
        load_multislice(image_dir, KEY, 1.0, 4)
    with pytest.raises(SliceReadError, match='key slice 3'):
        sample_neighbours(lambda i: None, 3, 1.0, 3)


@pytest.mark.parametrize('name', ['000001_01_01.png', 'abc', '000001_01_01/x.png',
                                  '000001_01_01/005.jpg', '_005.png'])
def test_bad_file_names(name):
    with pytest.raises(ValueError, match='bad DeepLesion file name'):
        split_file_name(name)


def test_split_file_name():
    assert split_file_name('000001_01_01_109.png') == ('000001_01_01', 109)
    assert split_file_name('000001_01_01/109.png') == ('000001_01_01', 109)


def test_read_png_hu_round_trip(tmp_path):
    path = str(tmp_path / 'a.png')
    hu = np.array([[-1024, 0], [40, 3071]], np.float32)
    write_png_hu(path, hu)
    assert cv2.imread(path, cv2.IMREAD_UNCHANGED).dtype == np.uint16
    np.testing.assert_array_equal(read_png_hu(path), hu)


def test_read_png_hu_bad_files(tmp_path):
    with pytest.raises(SliceReadError, match='nope.png.*not found'):
        read_png_hu(str(tmp_path / 'nope.png'))
    eight = str(tmp_path / 'eight.png')
    cv2.imwrite(eight, np.zeros((4, 4), np.uint8))
    with pytest.raises(SliceReadError, match='eight.png.*16-bit'):
        read_png_hu(eight)
    rgb = str(tmp_path / 'rgb.png')
    cv2.imwrite(rgb, np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(SliceReadError, match='rgb.png.*16-bit'):
        read_png_hu(rgb)
    bad = str(tmp_path / 'bad.png')
    with open(bad, 'wb') as f:
        f.write(b'not a png at all')
    with pytest.raises(SliceReadError, match='bad.png.*decode'):
        read_png_hu(bad)


def test_unreadable_neighbour_named(ramp_tree):
    image_dir, _ = ramp_tree
    path = osp.join(image_dir, '000001_01_01', '006.png')
    os.remove(path)
    cv2.imwrite(path, np.zeros((6, 8), np.uint8))
    with pytest.raises(SliceReadError, match='006.png'):
        load_multislice(image_dir, KEY, 2.0, 3)


def test_neighbour_of_other_size_named(ramp_tree):
    image_dir, _ = ramp_tree
    write_png_hu(osp.join(image_dir, '000001_01_01', '006.png'), np.zeros((5, 8)))
    with pytest.raises(SliceReadError, match='006.png: shape'):
        load_multislice(image_dir, KEY, 2.0, 3)


def test_windowing():
    hu = np.array([-3000, -1024, 513, 2050, 5000], np.float32)
    out = windowing(hu)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-50, -50, 77.5, 205, 205], atol=1e-4)
    np.testing.assert_allclose(windowing(np.array([0.0, 100.0]), (0, 100)), [-50, 205])
    with pytest.raises(ValueError, match='hi > lo'):
        windowing(hu, (100, 100))


def test_write_png_hu_fast_and_default_hold_the_same_pixels(tmp_path):
    hu = np.random.default_rng(0).normal(0, 400, (16, 12))
    hu[0, 0], hu[0, 1] = -40000, 40000  # clipped to the PNG range
    write_png_hu(str(tmp_path / 'a' / 'zlib.png'), hu)
    write_png_hu(str(tmp_path / 'b' / 'fast.png'), hu, fast=True)
    expected = np.clip(np.rint(hu), -HU_OFFSET, 65535 - HU_OFFSET)
    for name in ('a/zlib.png', 'b/fast.png'):
        np.testing.assert_array_equal(read_png_hu(str(tmp_path / name)), expected)
