"""A tiny but real mmengine model, dataset and metric for platform tests.

Used by the tests of ``tools/train.py``, ``tools/test.py``, distributed
training and resume, independently of the detector: a linear regressor
(``y = x @ w``) trained with a mean-squared-error loss on a fixed random
data set. Subprocesses import it through ``custom_imports`` with the
repository on ``PYTHONPATH``; :func:`write_tiny_config` writes a config using it.
"""
from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path
from typing import Any, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

from a3d_det.registry import DATASETS, HOOKS, METRICS, MODELS

REPO = Path(__file__).resolve().parents[2]
TRUE_WEIGHT = torch.tensor([1.0, -2.0, 0.5, 3.0])


@DATASETS.register_module()
class TinyRegressionDataset(Dataset):
    """``size`` samples ``dict(inputs=(4,), target=(), index=())``."""

    def __init__(self, size: int = 16, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, 4, generator=gen)
        self.y = self.x @ TRUE_WEIGHT
        self.metainfo = dict(classes=('value',))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=self.x[i], target=self.y[i], index=i)


@MODELS.register_module()
class TinyRegressor(BaseModel):
    """Linear regression; ``predict`` returns one dict per sample."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs: torch.Tensor, target: torch.Tensor | None = None,
                index: torch.Tensor | None = None, mode: str = 'tensor') -> Any:
        """inputs (B, 4), target (B,), index (B,)."""
        pred = self.linear(inputs).squeeze(-1)  # (B,)
        if mode == 'loss':
            return dict(loss_mse=((pred - target) ** 2).mean())
        if mode == 'predict':
            return [dict(pred=p, target=t, index=int(i))
                    for p, t, i in zip(pred, target, index)]
        return pred


@METRICS.register_module()
class TinyRegressionMetric(BaseMetric):
    """Counts the samples it saw, sums their indices, computes the MSE.

    In a distributed run ``count`` and ``index_sum`` show whether the
    results of every rank were gathered exactly once.
    """

    default_prefix = 'tiny'

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            self.results.append((s['index'], float(s['pred']),
                                 float(s['target'])))

    def compute_metrics(self, results: list) -> dict:
        errors = [(p - t) ** 2 for _, p, t in results]
        return dict(count=len(results),
                    index_sum=sum(i for i, _, _ in results),
                    mse=sum(errors) / len(errors))


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILLs the process after iteration ``at_iter`` (a crashed job).

    Lowest priority: runs after the CheckpointHook of the same iteration.
    """

    priority = 'LOWEST'

    def __init__(self, at_iter: int) -> None:
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 >= self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """SIGKILLs the process in the middle of writing checkpoint ``at_iter``.

    The bytes of the checkpoint are then written to disk but not yet
    flushed: the kill lands in the first ``os.fsync`` of that save (a job
    killed by its scheduler while saving).
    """

    def __init__(self, at_iter: int) -> None:
        self.at_iter = at_iter

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner.iter + 1 >= self.at_iter:
            os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)


def write_tiny_config(path: Path, max_iters: int = 8, val_interval: int = 4,
                      ckpt_interval: int = 2, extra: str = '',
                      tensorboard: bool = False) -> Path:
    """Write a config for :class:`TinyRegressor` on the project's runtime.

    ``tensorboard=False`` keeps only the LocalVisBackend (importing
    TensorBoard costs a second or two per run).
    """
    runtime = REPO / 'configs' / '_base_' / 'default_runtime.py'
    if not tensorboard:
        extra = textwrap.dedent('''\
            visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
            ''') + textwrap.dedent(extra)
    text = textwrap.dedent(f'''\
        _base_ = [{str(runtime)!r}]
        custom_imports = dict(imports=['tests.helpers.platform_fixtures'],
                              allow_failed_imports=False)
        model = dict(type='TinyRegressor')
        train_dataloader = dict(
            batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='TinyRegressionDataset', size=16, seed=0))
        val_dataloader = dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='TinyRegressionDataset', size=11, seed=1))
        test_dataloader = val_dataloader
        val_evaluator = dict(type='TinyRegressionMetric')
        test_evaluator = val_evaluator
        train_cfg = dict(by_epoch=False, max_iters={max_iters},
                         val_interval={val_interval})
        val_cfg = dict(type='ValLoop')
        test_cfg = dict(type='TestLoop')
        optim_wrapper = dict(
            optimizer=dict(type='SGD', lr=0.1),
            clip_grad=dict(max_norm=35))
        default_hooks = dict(
            logger=dict(interval=1),
            checkpoint=dict(by_epoch=False, interval={ckpt_interval},
                            max_keep_ckpts=-1))
        log_processor = dict(by_epoch=False)
        randomness = dict(seed=0)
        ''') + textwrap.dedent(extra)
    path.write_text(text)
    return path


def subprocess_env() -> dict:
    """Environment for tool subprocesses: the repository (and so
    ``tests.helpers``) importable, 1 thread."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def run_tool(args: Sequence[str], timeout: float = 300,
             env_extra: dict | None = None
             ) -> 'subprocess.CompletedProcess[str]':
    """Run ``args`` (e.g. ``['tools/train.py', cfg]``) from the repository
    root with :func:`subprocess_env` updated by ``env_extra`` (``None``
    values remove a variable); ``.py`` scripts run with this Python."""
    import subprocess
    import sys
    cmd = list(args)
    if cmd[0].endswith('.py'):
        cmd = [sys.executable] + cmd
    env = subprocess_env()
    for key, value in (env_extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    """A TCP port free right now on localhost (for torchrun)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool_in_process(script: str, argv: Sequence[str], monkeypatch) -> int:
    """Run ``tools/<script>`` as ``__main__`` in this process (no start-up
    cost) with ``argv``; return its exit status (0 when it returns)."""
    import runpy
    import sys
    monkeypatch.setattr(sys, 'argv', [script, *argv])
    try:
        runpy.run_path(str(REPO / 'tools' / script), run_name='__main__')
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
