"""The slice files samples read, and the unreadable ones among them."""
from __future__ import annotations

import os.path as osp

import numpy as np

from a3d_det.datasets.deeplesion import write_png_hu
from a3d_det.datasets.slice_check import sample_slice_paths, unreadable_slices

SERIES = '000001_01_01'
THREE = dict(num_slices=3, target_interval=2.0)
SEVEN = dict(num_slices=7, target_interval=2.0)


def _paths(image_dir, indices):
    return [osp.join(image_dir, SERIES, f'{i:03d}.png') for i in indices]


def test_paths_follow_the_neighbour_rule(ramp_tree):
    image_dir, _ = ramp_tree   # slices 1..9, 4 missing
    key = f'{SERIES}/005.png'
    # 5 mm, 3 slices at 2 mm: outputs at -0.4 and +0.4 slices read 4 and 5,
    # 5 and 6; slice 4 is missing and falls back to the key slice.
    assert sample_slice_paths(image_dir, key, 5.0, [THREE]) == _paths(image_dir, [5, 6])
    # 7 slices at 2 mm add +-0.8 (4..6) and +-1.2 (3, 4 and 6, 7); native
    # neighbours: 2, 3, 4 -> 5, 6, 7, 8.
    assert sample_slice_paths(image_dir, key, 5.0) == _paths(image_dir, [2, 3, 5, 6, 7, 8])
    # Unknown interval: the key slice repeated (native neighbours still read).
    assert sample_slice_paths(image_dir, key, float('nan'), [SEVEN]) == \
        _paths(image_dir, [5])
    assert sample_slice_paths(image_dir, f'{SERIES}/004.png', 5.0) == _paths(image_dir, [4])


def test_unreadable_slices_name_the_samples_needing_them(ramp_tree):
    image_dir, _ = ramp_tree
    with open(_paths(image_dir, [3])[0], 'wb') as f:
        f.write(b'not a png')
    write_png_hu(_paths(image_dir, [8])[0], np.zeros((5, 5)))   # the others are 6 x 8
    images = [dict(file_name=f'{SERIES}/{k:03d}.png', slice_interval=5.0) for k in (4, 5, 9)]
    bad = unreadable_slices(image_dir, images)
    p3, p4, p8 = _paths(image_dir, [3, 4, 8])
    assert sorted(bad) == [p3, p4, p8]
    assert 'cannot decode' in bad[p3][0] and bad[p3][1] == [f'{SERIES}/005.png']
    assert 'not found' in bad[p4][0] and bad[p4][1] == [f'{SERIES}/004.png']
    # Slice 8 is a neighbour of 5 (native 7 slices) and of 9.
    assert 'shape (5, 5) differs' in bad[p8][0]
    assert sorted(bad[p8][1]) == [f'{SERIES}/005.png', f'{SERIES}/009.png']
