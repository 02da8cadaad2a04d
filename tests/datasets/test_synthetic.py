import csv
import json
import math
import os
import os.path as osp
from collections import defaultdict

import cv2
import numpy as np
import pytest

from a3d_det.datasets import SyntheticDeepLesionDataset, make_synthetic_deeplesion
from a3d_det.datasets.deeplesion import read_png_hu
from a3d_det.datasets.dl_info import DL_INFO_COLUMNS, iter_dl_info
from a3d_det.datasets.synthetic import SLICE_INTERVALS


def rows(root):
    with open(osp.join(root, 'DL_info.csv'), newline='') as f:
        return list(csv.DictReader(f))


def test_format_columns_png_and_splits(synthetic_tree):
    root, summary = synthetic_tree
    with open(osp.join(root, 'DL_info.csv')) as f:
        assert f.readline().strip().split(',') == list(DL_INFO_COLUMNS)
    recs = [r for _, r, _ in iter_dl_info(osp.join(root, 'DL_info.csv'))]
    assert len(recs) == summary['num_lesions'] + summary['num_noisy']
    assert summary['num_noisy'] > 0 and any(r['noisy'] for r in recs)
    split_of_patient = defaultdict(set)
    for r in recs:
        split_of_patient[r['patient']].add(r['split'])
        assert r['spacing'][2] in SLICE_INTERVALS
        png = cv2.imread(osp.join(root, 'Images_png', r['file_name']), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint16 and png.shape == r['image_size']
        assert abs(int(png[0, 0]) - (32768 - 1000)) < 100  # air with the +32768 offset
        assert r['lesion_type'] == -1 if r['split'] == 1 else 1 <= r['lesion_type'] <= 8
    assert all(len(s) == 1 for s in split_of_patient.values())  # split by patient
    assert {s for r in recs for s in [r['split']]} == {1, 2, 3}
    assert len({r['spacing'][2] for r in recs}) >= 3


def test_only_slices_near_key_slices_on_disk(synthetic_tree):
    root, _ = synthetic_tree
    recs = [r for _, r, _ in iter_dl_info(osp.join(root, 'DL_info.csv'))]
    keys = defaultdict(set)
    for r in recs:
        keys[r['file_name'].split('/')[0]].add((r['key_index'], r['spacing'][2]))
    for folder, ks in keys.items():
        on_disk = {int(n[:-4]) for n in os.listdir(osp.join(root, 'Images_png', folder))}
        for key, dz in ks:
            half = int(math.floor(15 / dz + 1e-9))
            assert set(range(key - half, key + half + 1)) <= on_disk
        for i in on_disk:
            assert any(abs(i - key) * dz <= 15 + 1e-6 for key, dz in ks)


def test_lesions_are_compact_along_z_and_coordinates_1_based(synthetic_tree):
    """The lesion is where the 0-based RECIST says on the key slice and gone
    >= 4 mm away, while the rest (anatomy, tubes) stays."""
    root, _ = synthetic_tree
    checked, offsets = 0, []
    for r in rows(root):
        if r['Possibly_noisy'] == '1':
            continue
        folder, key = r['File_name'][:12], int(r['Key_slice_index'])
        dz = float(r['Spacing_mm_px_'].split(',')[2])
        far = key + max(int(math.ceil(4.0 / dz)), 1)
        image_dir = osp.join(root, 'Images_png', folder)
        diff = read_png_hu(osp.join(image_dir, f'{key:03d}.png')) - \
            read_png_hu(osp.join(image_dir, f'{far:03d}.png'))
        diff = cv2.blur(diff, (3, 3))
        recist = np.array([float(v) for v in r['Measurement_coordinates'].split(',')]) - 1
        x1, y1, x2, y2 = np.array([float(v) for v in r['Bounding_boxes'].split(',')]) - 1
        yy, xx = np.mgrid[:diff.shape[0], :diff.shape[1]]
        inside = (xx >= x1) & (xx <= x2) & (yy >= y1) & (yy <= y2)
        weight = np.abs(diff) * inside
        cx, cy = (weight * xx).sum() / weight.sum(), (weight * yy).sum() / weight.sum()
        offsets.append(math.hypot(cx - recist[0::2].mean(), cy - recist[1::2].mean()))
        # outside the lesion boxes the key slice and the far slice agree
        others = [np.array([float(v) for v in o['Bounding_boxes'].split(',')]) - 1
                  for o in rows(root) if o['File_name'] == r['File_name']]
        outside = np.ones_like(inside)
        for b in others:
            outside &= ~((xx >= b[0] - 2) & (xx <= b[2] + 2) & (yy >= b[1] - 2) & (yy <= b[3] + 2))
        assert np.abs(diff[inside]).mean() > 3 * np.abs(diff[outside]).mean()
        checked += 1
        if checked == 8:
            break
    assert checked == 8
    assert np.median(offsets) < 0.5  # 1-based in the CSV: off by sqrt(2) if misread


def test_deterministic_and_seeded(tmp_path):
    a = make_synthetic_deeplesion(str(tmp_path / 'a'), num_series=3, size=48, seed=1)
    make_synthetic_deeplesion(str(tmp_path / 'b'), num_series=3, size=48, seed=1)
    make_synthetic_deeplesion(str(tmp_path / 'c'), num_series=3, size=48, seed=2)
    ra, rb, rc = (open(tmp_path / n / 'DL_info.csv').read() for n in 'abc')
    assert ra == rb and ra != rc
    f = rows(str(tmp_path / 'a'))[0]['File_name']
    path = osp.join('Images_png', f[:12], f[13:])
    np.testing.assert_array_equal(read_png_hu(str(tmp_path / 'a' / path)),
                                  read_png_hu(str(tmp_path / 'b' / path)))
    assert a['num_series'] == 3
    wide = make_synthetic_deeplesion(str(tmp_path / 'w'), num_series=2, size=48,
                                     non_square_fraction=1.0)
    for r in rows(str(tmp_path / 'w')):
        assert r['Image_size'] == '48, 60'
        png = cv2.imread(osp.join(str(tmp_path / 'w'), 'Images_png', r['File_name'][:12],
                                  r['File_name'][13:]), cv2.IMREAD_UNCHANGED)
        assert png.shape == (48, 60)
    assert wide['num_images'] >= 2
    with pytest.raises(FileExistsError, match='already exists'):
        make_synthetic_deeplesion(str(tmp_path / 'a'), num_series=3, size=48, seed=1)
    with pytest.raises(ValueError, match='num_series'):
        make_synthetic_deeplesion(str(tmp_path / 'd'), num_series=0)
    with pytest.raises(ValueError, match='size'):
        make_synthetic_deeplesion(str(tmp_path / 'd'), size=8)


def test_synthetic_dataset_generates_once_and_checks_params(tmp_path):
    root = str(tmp_path / 'syn')
    kw = dict(num_series=4, size=48, seed=0)
    ds = SyntheticDeepLesionDataset(data_root=root, synthetic=kw, split=None)
    assert len(ds) > 0 and osp.isfile(osp.join(root, 'DL_info.csv'))
    mtime = os.stat(osp.join(root, 'DL_info.csv')).st_mtime_ns
    again = SyntheticDeepLesionDataset(data_root=root, synthetic=kw, split=None)
    assert len(again) == len(ds)
    assert os.stat(osp.join(root, 'DL_info.csv')).st_mtime_ns == mtime
    assert len(SyntheticDeepLesionDataset(data_root=root, split=None)) == len(ds)
    with pytest.raises(ValueError, match='other arguments'):
        SyntheticDeepLesionDataset(data_root=root, synthetic=dict(kw, seed=1))
    with open(osp.join(root, 'synthetic.json')) as f:
        recorded = json.load(f)
    assert recorded['params']['seed'] == 0
    recorded['params']['version'] = 0
    with open(osp.join(root, 'synthetic.json'), 'w') as f:
        json.dump(recorded, f)
    with pytest.raises(ValueError, match='version 0 of the synthetic generator'):
        SyntheticDeepLesionDataset(data_root=root, synthetic=kw)
    os.remove(osp.join(root, 'synthetic.json'))
    with pytest.raises(FileNotFoundError, match='synthetic.json'):
        SyntheticDeepLesionDataset(data_root=root, synthetic=kw)


def _ensure(args):
    from a3d_det.datasets.synthetic import ensure_synthetic_deeplesion
    return ensure_synthetic_deeplesion(args, num_series=3, size=48, seed=0)


def test_concurrent_jobs_generate_once(tmp_path):
    import multiprocessing
    root = str(tmp_path / 'shared')
    with multiprocessing.get_context('fork').Pool(3) as pool:
        made = pool.map(_ensure, [root] * 3)
    assert sorted(made) == [False, False, True]
    assert not [n for n in os.listdir(root) if n.endswith('.tmp')]
    assert len(SyntheticDeepLesionDataset(data_root=root, split=None,
                                          synthetic=dict(num_series=3, size=48, seed=0))) > 0
