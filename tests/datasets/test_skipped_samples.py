"""Training skips a sample whose slices cannot be read; evaluation never does."""
from __future__ import annotations

import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.logging import MessageHub, MMLogger

from a3d_det.datasets import DeepLesionDataset, SkippedSamplesError, SliceReadError
from a3d_det.engine import SkippedSamplesHook
from a3d_det.structures.lesion_data_sample import LesionDataSample

SERIES = '000001_01_01'
KEYS = (1, 2, 4, 5, 6, 9)   # slice 4 of the ramp tree is missing
PIPELINE = [dict(type='LoadMultiSliceFromFile'), dict(type='LoadLesionAnnotations'),
            dict(type='WindowCT'), dict(type='PackLesionInputs')]


@pytest.fixture
def tree(ramp_tree, lesion_record):
    """Six training key images (neighbours at +-1 slice); key slice 9 corrupt,
    key slice 4 missing."""
    image_dir, write_csv = ramp_tree
    write_csv([lesion_record(f'{SERIES}/{k:03d}.png', (1, 1, 4, 4), size=(6, 8))
               for k in KEYS])
    with open(osp.join(image_dir, SERIES, '009.png'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n truncated')
    return osp.dirname(image_dir), image_dir


def _dataset(root, **kwargs):
    return DeepLesionDataset(data_root=root, pipeline=PIPELINE, **kwargs)


def _index(ds, key):
    return [ds.get_data_info(i)['file_name'] for i in range(len(ds))].index(
        f'{SERIES}/{key:03d}.png')


def test_training_skips_unreadable_sample_and_draws_another(tree):
    root, image_dir = tree
    ds = _dataset(root, max_skipped_fraction=0.5)
    np.random.seed(0)
    out = ds[_index(ds, 9)]
    name = out['data_samples'].file_name
    skipped = out['data_samples'].metainfo.get('skipped_samples', {})
    # Whatever was drawn instead is readable; the corrupt sample rides along.
    assert name not in (f'{SERIES}/009.png', f'{SERIES}/004.png')
    assert osp.join(image_dir, SERIES, '009.png') in skipped[f'{SERIES}/009.png']
    assert f'{SERIES}/009.png' in ds.skipped
    out = ds[_index(ds, 4)]  # key slice missing: skipped too
    assert 'not found' in ds.skipped[f'{SERIES}/004.png']
    # A readable item carries no skipped samples.
    assert 'skipped_samples' not in ds[_index(ds, 2)]['data_samples'].metainfo


def test_skipping_warns_with_the_file_name(tree, capsys):
    root, image_dir = tree
    MMLogger.get_instance('skip_test', log_level='INFO')
    ds = _dataset(root, max_skipped_fraction=0.5)
    ds[_index(ds, 9)]
    err = capsys.readouterr()
    assert f'skipping training sample {SERIES}/009.png' in err.out + err.err


def test_more_skips_than_the_limit_stop_with_the_list(tree):
    root, image_dir = tree
    ds = _dataset(root)   # default 0.01 of 6 samples: none may be skipped
    assert ds.max_skipped_fraction == 0.01
    with pytest.raises(SkippedSamplesError) as info:
        ds[_index(ds, 9)]
    assert f'{SERIES}/009.png' in str(info.value)
    assert osp.join(image_dir, SERIES, '009.png') in str(info.value)
    ds = _dataset(root, max_skipped_fraction=1 / 6)   # one of six allowed
    ds[_index(ds, 9)]
    with pytest.raises(SkippedSamplesError, match=r'(?s)2 of 6 .*allows 1\).*004\.png.*009\.png'):
        ds[_index(ds, 4)]
    with pytest.raises(ValueError, match='max_skipped_fraction'):
        _dataset(root, max_skipped_fraction=1.5)


def test_test_mode_never_skips(tree):
    root, image_dir = tree
    ds = _dataset(root, test_mode=True, max_skipped_fraction=1.0)
    with pytest.raises(SliceReadError, match=osp.join(image_dir, SERIES, '009.png')):
        ds[_index(ds, 9)]
    with pytest.raises(SliceReadError, match='004.png'):
        ds[_index(ds, 4)]


class _Samples(list):
    """A stand-in train dataset: its length and max_skipped_fraction."""

    def __init__(self, num_samples: int, fraction: float) -> None:
        super().__init__([None] * num_samples)
        self.max_skipped_fraction = fraction


def _runner(num_samples, fraction):
    loader = SimpleNamespace(dataset=_Samples(num_samples, fraction))
    logger = MMLogger.get_instance('skip_hook_test', log_level='INFO')
    return SimpleNamespace(train_dataloader=loader, logger=logger, iter=0,
                           message_hub=MessageHub.get_instance(f'skip_hook_{fraction}'))


def _batch(*skipped):
    """A training batch whose samples carry the skipped file names given."""
    samples = [LesionDataSample(metainfo=dict(skipped_samples={
        n: f'/x/{n}: cannot decode' for n in names}) if names else {}) for names in skipped]
    return dict(inputs=[None] * len(samples), data_samples=samples)


def test_hook_counts_over_batches_and_stops_above_the_limit(capsys):
    hook = SkippedSamplesHook()
    runner = _runner(num_samples=100, fraction=0.02)   # two may be skipped
    hook.before_train(runner)
    hook.before_train_iter(runner, 0, _batch(['a.png'], []))
    hook.before_train_iter(runner, 1, _batch(['a.png', 'b.png']))   # a counted once
    assert sorted(hook.skipped) == ['a.png', 'b.png']
    assert sorted(runner.message_hub.get_info('skipped_samples')) == ['a.png', 'b.png']
    hook.after_train_epoch(runner)
    log = capsys.readouterr().out
    assert '2 of 100 training samples skipped (2.00 %; max_skipped_fraction=0.02 ' \
        'allows 2): a.png, b.png' in log
    with pytest.raises(SkippedSamplesError, match=r'(?s)3 of 100.*a\.png.*b\.png.*c\.png'):
        hook.before_train_iter(runner, 2, _batch(['c.png']))


def test_hook_refuses_skips_in_evaluation():
    hook = SkippedSamplesHook()
    runner = _runner(num_samples=10, fraction=0.5)
    hook.before_val_iter(runner, 0, _batch([]))
    with pytest.raises(SkippedSamplesError, match='validation never skips.*'):
        hook.before_val_iter(runner, 0, _batch(['a.png']))
    with pytest.raises(SkippedSamplesError, match='testing never skips'):
        hook.before_test_iter(runner, 0, _batch(['a.png']))
