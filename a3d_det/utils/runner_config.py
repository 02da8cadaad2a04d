"""Config preparation of ``tools/train.py`` and ``tools/test.py``.

The tools parse arguments, call these functions and build mmengine's Runner.
User mistakes (a missing or unreadable config or checkpoint, an option the
config cannot take) raise :class:`~a3d_det.utils.errors.UserInputError`.
"""
from __future__ import annotations

import importlib
import os
import os.path as osp
import sys
from typing import Any
from collections.abc import Mapping

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from a3d_det.engine.resume import checkpoint_problem, find_resume_checkpoint
from a3d_det.registry import HOOKS
from a3d_det.utils.errors import UserInputError, require_file

__all__ = [
    'add_visualization_hook', 'build_runner', 'enable_amp', 'load_config',
    'set_froc_dump_file', 'set_load_from', 'set_resume', 'set_work_dir',
]

FROC_METRIC_TYPE = 'DeepLesionFROCMetric'
VISUALIZATION_HOOK_TYPE = 'LesionVisualizationHook'


def build_runner(cfg: Config) -> Runner:
    """mmengine's Runner, or the registered ``runner_type`` when set."""
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f'{type(err).__name__}: {lines[0] if lines else ""}'.rstrip(': ')


def load_config(path: str, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """Read a config file and merge ``--cfg-options`` into it.

    Args:
        path: a ``.py`` config (``_base_`` inheritance resolved by mmengine).
        cfg_options: ``key.sub=value`` overrides from ``DictAction``.

    Raises:
        UserInputError: the file is missing, not a ``.py`` config, or mmengine
            cannot read it.
    """
    require_file(path, 'config file')
    if not path.endswith('.py'):
        raise UserInputError(f'config must be a .py file: {path}')
    try:
        cfg = Config.fromfile(path)
    except Exception as err:  # syntax error, missing _base_, bad import ...
        raise UserInputError(f'cannot read config {path}: {_one_line(err)}') from None
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    return cfg


def set_work_dir(cfg: Config, work_dir: str | None, config_path: str) -> None:
    """``--work-dir`` > ``cfg.work_dir`` > ``work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def set_resume(cfg: Config, resume: str | None) -> None:
    """Apply ``--resume`` (``'auto'``: newest readable checkpoint of the work dir).

    Resuming restores the model, optimiser, parameter schedulers, message
    hub and the epoch/iteration counters; the Runner logs
    ``resumed epoch: E, iter: I``. ``'auto'`` tries the work dir's
    checkpoints from the newest (:func:`a3d_det.engine.find_resume_checkpoint`);
    each unreadable one (truncated, damaged) is named in a warning and the
    next older one is tried. Without any checkpoint training starts from
    scratch.

    Args:
        cfg: the config; ``resume`` and ``load_from`` are set.
        resume: ``None`` (no resume), ``'auto'`` or a checkpoint path.

    Raises:
        UserInputError: the named checkpoint does not exist or cannot be
            read; with ``'auto'``, checkpoints exist but none can be read.
    """
    if resume is None:
        return
    cfg.resume = True
    if resume == 'auto':
        search = find_resume_checkpoint(cfg.work_dir)
        for path, problem in search.rejected:
            print(f'warning: --resume: cannot read checkpoint {path}: {problem}; '
                  'trying the previous one', file=sys.stderr)
        if search.checkpoint is not None:
            print(f'--resume: resuming from {search.checkpoint}', file=sys.stderr)
        elif search.rejected:
            tried = '; '.join(f'{path} ({problem})' for path, problem in search.rejected)
            raise UserInputError(f'--resume: no readable checkpoint in {cfg.work_dir}; '
                                 f'tried {tried}')
        else:
            print(f'--resume: no checkpoint in {cfg.work_dir} yet, '
                  'training from scratch', file=sys.stderr)
        cfg.load_from = search.checkpoint  # None: the Runner starts afresh
    else:
        require_file(resume, 'checkpoint to resume from')
        problem = checkpoint_problem(resume)
        if problem is not None:
            raise UserInputError(f'cannot read checkpoint to resume from: {resume}: {problem}')
        cfg.load_from = resume


def set_load_from(cfg: Config, checkpoint: str) -> None:
    """Evaluate ``checkpoint`` (weights only; ``weights_only=True`` load).
    The backbone's ImageNet file is not read: it loads in ``init_weights``,
    which the Runner calls only to train."""
    require_file(checkpoint, 'checkpoint')
    cfg.load_from = checkpoint
    cfg.resume = False


def enable_amp(cfg: Config) -> None:
    """Mixed-precision training: fp16 with dynamic loss scale on CUDA
    (mmengine ``AmpOptimWrapper``), bfloat16 autocast on CPU
    (``CPUAmpOptimWrapper``)."""
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper is None:
        raise UserInputError('--amp needs an optim_wrapper in the config')
    if optim_wrapper.get('type', 'OptimWrapper') in ('AmpOptimWrapper',
                                                     'CPUAmpOptimWrapper'):
        return
    if optim_wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise UserInputError(
            f"--amp cannot be combined with optim_wrapper.type="
            f"{optim_wrapper['type']!r}")
    if torch.cuda.is_available():
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        optim_wrapper.type = 'CPUAmpOptimWrapper'


def _evaluator_entries(cfg: Config, key: str) -> list:
    evaluator = cfg.get(key)
    if evaluator is None:
        return []
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    return list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]


def set_froc_dump_file(cfg: Config, dump_file: str) -> None:
    """``--out``: the FROC metric writes its predictions with ground truth.

    Raises:
        UserInputError: the test evaluator has no ``DeepLesionFROCMetric``.
    """
    entries = [m for m in _evaluator_entries(cfg, 'test_evaluator')
               if isinstance(m, dict) and str(m.get('type', '')).split('.')[-1]
               == FROC_METRIC_TYPE]
    if not entries:
        raise UserInputError(
            f'--out needs a {FROC_METRIC_TYPE} in test_evaluator')
    dump_dir = osp.dirname(osp.abspath(dump_file))
    os.makedirs(dump_dir, exist_ok=True)
    for metric in entries:
        metric['dump_file'] = dump_file


def add_visualization_hook(cfg: Config, show_dir: str) -> None:
    """``--show-dir``: save overlays of predictions and ground truth.

    Raises:
        UserInputError: ``LesionVisualizationHook`` is not available.
    """
    importlib.import_module('a3d_det.visualization')
    if HOOKS.get(VISUALIZATION_HOOK_TYPE) is None:
        raise UserInputError(
            f'--show-dir needs {VISUALIZATION_HOOK_TYPE} '
            '(a3d_det.visualization), which this installation does not have')
    hooks = list(cfg.get('custom_hooks') or [])
    hooks = [h for h in hooks if h.get('type') != VISUALIZATION_HOOK_TYPE]
    hooks.append(dict(type=VISUALIZATION_HOOK_TYPE, show_dir=show_dir))
    cfg.custom_hooks = hooks
