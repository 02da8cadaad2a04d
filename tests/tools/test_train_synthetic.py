"""The embedded default config end to end for a handful of iterations:
tools/train.py (synthetic data generated on first use, FROC validation),
then tools/test.py with --json-out, --out and --show-dir on its checkpoint.

Kept small: 16 synthetic series, 2 training iterations, 3 validation and 3
test images, no dataloader workers.
"""
import json
from pathlib import Path

import pytest

from tests.helpers.platform_fixtures import run_tool

#: Every test here trains or tests in subprocesses.
pytestmark = pytest.mark.slow

CONFIG = 'configs/a3d/a3d_densenet121_3slice_synthetic.py'
FROC_KEYS = ['sens@0.5', 'sens@1', 'sens@2', 'sens@4', 'sens@8', 'sens@16',
             'avg[0.5-4]']


def _small_data_options(data_root: Path) -> list:
    opts = []
    for split in ('train', 'val', 'test'):
        loader = f'{split}_dataloader'
        opts += [f'{loader}.dataset.data_root={data_root}',
                 f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return opts + ['train_dataloader.dataset.synthetic.num_series=16',
                   'val_dataloader.dataset.indices=3',
                   'test_dataloader.dataset.indices=3']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    data_root = root / 'data'
    work_dir = root / 'work'
    out = run_tool(['tools/train.py', CONFIG, '--work-dir', str(work_dir),
                    '--cfg-options', 'train_cfg.max_iters=2',
                    'default_hooks.checkpoint.interval=2',
                    'default_hooks.logger.interval=1',
                    *_small_data_options(data_root)], timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    return data_root, work_dir, log


def test_train_generates_data_trains_and_validates(trained):
    data_root, work_dir, log = trained
    assert (data_root / 'DL_info.csv').is_file()
    assert 'Iter(train) [2/2]' in log
    for loss in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
                 'loss_mask'):
        assert loss in log
    assert 'DeepLesion FROC' in log and 'avg[0.5-4]: ' in log
    assert (work_dir / 'iter_2.pth').is_file()
    assert list(work_dir.glob('*/vis_data/events.out.tfevents.*'))


def test_test_tool_json_dump_and_overlays(trained, tmp_path):
    data_root, work_dir, _ = trained
    summary = tmp_path / 'froc.json'
    dump = tmp_path / 'pred_dump.json'
    show = tmp_path / 'show'
    out = run_tool(['tools/test.py', CONFIG, str(work_dir / 'iter_2.pth'),
                    '--work-dir', str(tmp_path / 'w'),
                    '--json-out', str(summary), '--out', str(dump),
                    '--show-dir', str(show),
                    '--cfg-options', *_small_data_options(data_root)],
                   timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    result = json.loads(summary.read_text())
    assert list(result) == FROC_KEYS
    assert all(0.0 <= v <= 1.0 for v in result.values())
    assert json.loads(dump.read_text())  # the FROC metric's prediction dump
    images = [p for p in show.rglob('*') if p.suffix in ('.png', '.jpg')]
    assert len(images) == 3
