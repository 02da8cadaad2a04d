"""One data contract: for the same key slices, tools/infer.py on a folder of
DeepLesion-style PNG slices gives the detections tools/test.py gives on the
DeepLesion-format tree (boxes and scores within 1e-3).

A tiny randomly initialised detector (tests/helpers/tiny_detector.py) on a
synthetic tree at 48 px, which the test pipeline resizes to 64 px: the
neighbours at 2 mm, windowing, resize, padding and the rescaling of the
boxes all take part.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest

from a3d_det.datasets import DeepLesionDataset
from a3d_det.datasets.synthetic import make_synthetic_deeplesion
from tests.helpers import tiny_detector

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _run(args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def _by_score(boxes, scores):
    order = np.argsort(-np.asarray(scores), kind='stable')
    return np.asarray(boxes, np.float64).reshape(-1, 4)[order], np.asarray(scores)[order]


@pytest.mark.slow
def test_infer_on_png_folder_matches_test_on_the_tree(tmp_path):
    root = str(tmp_path / 'DeepLesion')
    make_synthetic_deeplesion(root, num_series=16, size=48, seed=0)   # 5 test images
    (tmp_path / 'tiny').mkdir()
    cfg_path, ckpt_path, _ = tiny_detector.write_tiny_detector(str(tmp_path / 'tiny'), seed=1)
    test_set = DeepLesionDataset(data_root=root, split='test')
    infos = [test_set.get_data_info(i) for i in range(len(test_set))]
    assert len(infos) >= 2

    # 1. tools/test.py on the tree: the FROC dump holds every detection.
    dump = tmp_path / 'dump.json'
    _run(['tools/test.py', cfg_path, ckpt_path, '--work-dir', str(tmp_path / 'work'),
          '--out', str(dump), '--cfg-options', f'test_dataloader.dataset.data_root={root}',
          'test_dataloader.dataset.ann_file=DL_info.csv', 'test_dataloader.num_workers=0',
          'test_dataloader.persistent_workers=False', 'test_cfg.type=TestLoop',
          'train_dataloader=None', 'val_dataloader=None', 'val_evaluator=None'])
    tested = {im['file_name']: im for im in json.loads(dump.read_text())['images']}
    assert sorted(tested) == sorted(info['file_name'] for info in infos)

    # 2. tools/infer.py on each series folder, at the same key slices.
    series = defaultdict(list)
    for info in infos:
        series[info['file_name'].split('/')[0]].append(info)
    compared = 0
    for folder, keys in series.items():
        folder_path = osp.join(root, 'Images_png', folder)
        files = sorted(os.listdir(folder_path), key=lambda n: int(n[:-4]))
        positions = [files.index(info['file_name'].split('/')[1]) for info in keys]
        out_dir = tmp_path / 'infer' / folder
        _run(['tools/infer.py', cfg_path, ckpt_path, folder_path, '--out-dir', str(out_dir),
              '--device', 'cpu', '--score-thr', '0', '--slice-interval',
              str(keys[0]['slice_interval']), '--spacing', str(keys[0]['spacing']),
              '--slices', *map(str, positions)])
        report = json.loads((out_dir / 'detections.json').read_text())
        entries = {entry['index']: entry for entry in report['slices']}
        for info, pos in zip(keys, positions):
            dets = entries[pos]['detections']
            got_boxes, got_scores = _by_score([d['box'] for d in dets],
                                              [d['score'] for d in dets])
            ref = tested[info['file_name']]
            ref_boxes, ref_scores = _by_score(ref['pred_bboxes'], ref['pred_scores'])
            assert len(got_scores) == len(ref_scores) > 0, info['file_name']
            np.testing.assert_allclose(got_scores, ref_scores, atol=1e-3, rtol=0)
            np.testing.assert_allclose(got_boxes, ref_boxes, atol=1e-3, rtol=0)
            compared += 1
    assert compared == len(infos)
