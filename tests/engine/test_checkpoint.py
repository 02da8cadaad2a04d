"""weights_only loading of the project's own checkpoints (torch >= 2.6)."""
import io
import itertools
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import Runner

import a3d_det.engine  # noqa: F401  (registers the safe globals)
from a3d_det.engine.checkpoint import (checkpoint_safe_globals,
                                       history_buffer_getattr)
from tests.helpers.platform_fixtures import TinyRegressionDataset, TinyRegressor


_RUN_IDS = itertools.count()


def _runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=TinyRegressor(), work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=TinyRegressionDataset(size=8),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4, num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='LinearLR', start_factor=0.5, by_epoch=False,
                             begin=0, end=4),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2,
                                           by_epoch=False)),
        randomness=dict(seed=0), default_scope='a3d_det',
        experiment_name=f'ckpt_{next(_RUN_IDS)}', **kwargs)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A checkpoint written by mmengine's CheckpointHook after 2 iterations."""
    work_dir = tmp_path_factory.mktemp('ckpt')
    runner = _runner(work_dir, max_iters=2)
    runner.train()
    return work_dir / 'iter_2.pth', runner


@pytest.mark.slow
def test_plain_torch_load_fails_and_import_fixes_it(trained):
    """The reason for the fix, in a fresh process: torch.load's default
    (weights_only=True) refuses mmengine's checkpoint until a3d_det.engine
    is imported."""
    path, _ = trained
    code = textwrap.dedent(f'''
        import pickle, torch
        try:
            torch.load({str(path)!r})
            print('plain: loaded')
        except pickle.UnpicklingError as err:
            print('plain: refused', 'HistoryBuffer' in str(err))
        import a3d_det.engine
        ckpt = torch.load({str(path)!r})
        print('after import: iter', ckpt['meta']['iter'])
        ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'plain: refused True' in out.stdout
    assert 'after import: iter 2' in out.stdout


def test_own_checkpoint_loads_with_weights_only(trained):
    path, runner = trained
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 2
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    live = runner.message_hub.get_scalar('train/loss')
    assert buffer.data[0].tolist() == pytest.approx(live.data[0].tolist())
    assert buffer.statistics('mean') == pytest.approx(live.mean())
    state = runner.model.state_dict()
    for key, value in ckpt['state_dict'].items():
        assert torch.equal(value, state[key])
    # The message hub round-trips.
    hub = MessageHub.get_instance('restored_hub')
    hub.load_state_dict(ckpt['message_hub'])
    assert hub.get_scalar('train/loss').mean() == pytest.approx(live.mean())


def test_runner_resume_restores_iteration_and_optimizer(trained, tmp_path):
    path, first = trained
    runner = _runner(tmp_path, max_iters=4, resume=True, load_from=str(path))
    runner.load_or_resume()
    assert runner.iter == 2
    momentum = runner.optim_wrapper.optimizer.state_dict()['state']
    saved = first.optim_wrapper.optimizer.state_dict()['state']
    assert momentum.keys() == saved.keys() and len(momentum) > 0
    for key in saved:
        assert torch.equal(momentum[key]['momentum_buffer'],
                           saved[key]['momentum_buffer'])
    assert runner.param_schedulers[0].last_step == \
        first.param_schedulers[0].last_step


class _Evil:
    """Pickles as a call to os.system: what weights_only must refuse."""

    def __reduce__(self):
        return (os.system, ('true',))


def _save(obj, path):
    torch.save(obj, path)
    return path


def test_weights_only_still_refuses_code(tmp_path):
    path = _save({'state_dict': {}, 'x': _Evil()}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_load_from_stays_weights_only(tmp_path):
    """Runner.load_checkpoint (load_from: weights from elsewhere) refuses a
    file that would run code."""
    path = _save({'state_dict': TinyRegressor().state_dict(), 'x': _Evil()},
                 tmp_path / 'evil.pth')
    runner = _runner(tmp_path / 'wd', max_iters=1)
    with pytest.raises(pickle.UnpicklingError):
        runner.load_checkpoint(str(path))


class _GetattrAbuse:
    """Pickles as getattr(HistoryBuffer, '__init__'): not a statistic."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


class _GetattrOther:
    """Pickles as getattr(str, 'join'): another class."""

    def __reduce__(self):
        return (getattr, (str, 'join'))


@pytest.mark.parametrize('payload', [_GetattrAbuse(), _GetattrOther()])
def test_getattr_is_restricted(tmp_path, payload):
    path = _save({'x': payload}, tmp_path / 'abuse.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_history_buffer_getattr():
    assert history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    assert history_buffer_getattr(HistoryBuffer, 'min') is HistoryBuffer.min
    for obj, name in [(HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                      (os, 'system'), (HistoryBuffer, 3)]:
        with pytest.raises(pickle.UnpicklingError):
            history_buffer_getattr(obj, name)


def test_numpy_values_round_trip(tmp_path):
    import numpy as np
    obj = {'eta': np.float64(1.5), 'arr': np.arange(5, dtype=np.int64),
           'f32': np.ones((2, 2), np.float32), 'i': np.int32(3)}
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    out = torch.load(buf, weights_only=True)
    assert out['eta'] == 1.5 and out['i'] == 3
    np.testing.assert_array_equal(out['arr'], obj['arr'])
    assert out['f32'].dtype == np.float32


def test_safe_globals_names():
    names = {name for _, name in checkpoint_safe_globals()}
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
    assert {'numpy.core.multiarray._reconstruct',
            'numpy._core.multiarray._reconstruct'} <= names
