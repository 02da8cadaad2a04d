"""tools/train.py on the embedded default with three corrupt key slices: the
run skips those samples, names their files and finishes; with the default
max_skipped_fraction it stops with an error listing them.

Kept small: 16 synthetic series at 64 px, six training images (one epoch is
3 iterations of 2), one validation image, one loader worker.
"""
from __future__ import annotations

import os.path as osp
from pathlib import Path

import pytest

from a3d_det.datasets import DeepLesionDataset
from a3d_det.datasets.synthetic import make_synthetic_deeplesion
from tests.helpers.platform_fixtures import run_tool

CONFIG = 'configs/a3d/a3d_densenet121_3slice_synthetic.py'
SYNTHETIC = dict(num_series=16, size=64, seed=0)


@pytest.fixture(scope='module')
def corrupt_tree(tmp_path_factory):
    """The tree, the six training indices used and the three corrupt key PNGs.

    The corrupt keys are at least 8 slices from any other key of their
    series, so no other sample reads them as a neighbour.
    """
    root = tmp_path_factory.mktemp('corrupt') / 'data'
    make_synthetic_deeplesion(str(root), **SYNTHETIC)
    ds = DeepLesionDataset(data_root=str(root), split='train')
    names = [ds.get_data_info(i)['file_name'] for i in range(len(ds))]
    keys = [(n.split('/')[0], int(n.split('/')[1][:-4])) for n in names]

    def isolated(i: int) -> bool:
        return all(s != keys[i][0] or abs(k - keys[i][1]) >= 8
                   for j, (s, k) in enumerate(keys) if j != i)

    corrupt = [i for i in range(len(names)) if isolated(i)][:3]
    indices = corrupt + [i for i in range(len(names)) if i not in corrupt][:3]
    assert len(corrupt) == 3 and len(indices) == 6
    paths = [osp.join(str(root), 'Images_png', names[i]) for i in corrupt]
    for path in paths:
        with open(path, 'r+b') as f:
            f.truncate(100)   # a PNG cut short, as by an interrupted unzip
    return root, indices, paths


def _train(root: Path, work_dir: Path, indices: list[int], *extra: str):
    opts = ['train_cfg.max_iters=3', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=3',
            f'train_dataloader.dataset.indices={indices}'.replace(' ', ''),
            'val_dataloader.dataset.indices=1', 'val_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'val_dataloader.persistent_workers=False',
            *[f'train_dataloader.dataset.synthetic.{k}={v}' for k, v in SYNTHETIC.items()],
            *[f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val')],
            *extra]
    return run_tool(['tools/train.py', CONFIG, '--work-dir', str(work_dir),
                     '--cfg-options', *opts], timeout=900)


@pytest.mark.slow
def test_training_skips_corrupt_slices_and_names_them(corrupt_tree, tmp_path):
    root, indices, paths = corrupt_tree
    work_dir = tmp_path / 'work'
    out = _train(root, work_dir, indices, 'train_dataloader.dataset.max_skipped_fraction=0.6')
    console = out.stdout + out.stderr
    assert out.returncode == 0, console[-4000:]
    assert 'Iter(train) [3/3]' in console
    assert (work_dir / 'iter_3.pth').is_file()
    log = next(work_dir.glob('*/*.log')).read_text()
    for path in paths:
        assert f'{path}: cannot decode the image' in log
    # The count, logged before the validation: each corrupt sample once.
    assert '3 of 6 training samples skipped (50.00 %; max_skipped_fraction=0.6 ' \
        'allows 3)' in log


@pytest.mark.slow
def test_training_stops_above_the_limit_listing_the_files(corrupt_tree, tmp_path):
    root, indices, paths = corrupt_tree
    out = _train(root, tmp_path / 'work', indices)   # default 0.01: none allowed
    console = out.stdout + out.stderr
    assert out.returncode == 2, console[-4000:]
    assert 'Traceback' not in out.stderr
    assert 'error: training stopped' in out.stderr
    assert 'max_skipped_fraction=0.01 allows 0' in console
    assert any(path in console for path in paths)
    assert not (tmp_path / 'work' / 'iter_3.pth').exists()
