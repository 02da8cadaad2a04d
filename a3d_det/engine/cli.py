"""Config preparation shared by ``tools/train.py`` and ``tools/test.py``.

The tools only parse arguments, call these functions and build mmengine's
Runner. User mistakes (a missing config or checkpoint, an option the config
cannot take) raise :class:`UserInputError`, which :func:`run_cli` turns into
a one-line ``error: ...`` on stderr and exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import os.path as osp
import sys
from typing import Any, Callable, Mapping, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from a3d_det.evaluation import AVG_KEY, FP_LEVELS, sens_key
from a3d_det.registry import HOOKS
from .resume import checkpoint_problem, find_resume_checkpoint

__all__ = [
    'UserInputError', 'run_cli', 'add_common_args', 'build_runner',
    'load_config', 'set_work_dir', 'set_resume',
    'enable_amp', 'set_load_from', 'set_froc_dump_file',
    'add_visualization_hook', 'strip_metric_prefix', 'froc_summary',
    'write_json', 'FROC_KEYS',
]

#: The summary keys of the FROC metric (docs/CONTRACTS.md), in table order:
#: sens@0.5 ... sens@16, avg[0.5-4].
FROC_KEYS: tuple[str, ...] = tuple(sens_key(lv) for lv in FP_LEVELS) + (AVG_KEY,)

FROC_METRIC_TYPE = 'DeepLesionFROCMetric'
VISUALIZATION_HOOK_TYPE = 'LesionVisualizationHook'


class UserInputError(Exception):
    """A mistake in the command line or the files it names."""


def run_cli(main: Callable[[], Any]) -> None:
    """Run ``main()``; report a :class:`UserInputError` in one line, exit 2.

    A distributed run's ranks wait for each other after a successful run and
    destroy the process group before exiting: a rank leaving first while its
    gloo group was left to interpreter shutdown aborted the process
    ("terminate called without an active exception") in about half of the
    two-process runs here.
    """
    distributed = lambda: torch.distributed.is_available() and torch.distributed.is_initialized()  # noqa: E731
    try:
        main()
    except UserInputError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
    else:
        if distributed():  # every rank finished: leave together
            torch.distributed.barrier()
    finally:
        if distributed():
            torch.distributed.destroy_process_group()


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options`` and ``--launcher`` (both tools)."""
    parser.add_argument('--work-dir',
                        help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default=None,
        help='override config keys, e.g. train_cfg.max_iters=10 '
        'test_dataloader.dataset.data_root=data/x')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='job launcher')
    # Set by the deprecated torch.distributed.launch; torchrun uses env vars.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def build_runner(cfg: Config) -> Runner:
    """mmengine's Runner, or the registered ``runner_type`` when set."""
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg \
        else RUNNERS.build(cfg)


def _require_file(path: str, what: str) -> None:
    if not osp.isfile(path):
        raise UserInputError(f'{what} not found: {path}')


def load_config(path: str, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """Read a config file and merge ``--cfg-options`` into it.

    Args:
        path: a ``.py`` config (``_base_`` inheritance resolved by mmengine).
        cfg_options: ``key.sub=value`` overrides from ``DictAction``.

    Raises:
        UserInputError: the file is missing or not a ``.py`` config.
    """
    _require_file(path, 'config file')
    if not path.endswith('.py'):
        raise UserInputError(f'config must be a .py file: {path}')
    cfg = Config.fromfile(path)
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
        _require_file(resume, 'checkpoint to resume from')
        problem = checkpoint_problem(resume)
        if problem is not None:
            raise UserInputError(f'cannot read checkpoint to resume from: {resume}: {problem}')
        cfg.load_from = resume


def set_load_from(cfg: Config, checkpoint: str) -> None:
    """Evaluate ``checkpoint`` (weights only; ``weights_only=True`` load).
    The backbone's ImageNet file is not read: it loads in ``init_weights``,
    which the Runner calls only to train."""
    _require_file(checkpoint, 'checkpoint')
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


def strip_metric_prefix(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``{'deeplesion/sens@0.5': x}`` -> ``{'sens@0.5': x}``.

    Only a leading metric prefix goes: breakdown keys such as
    ``sens@4/interval<=2mm`` keep their group.
    """
    def strip(key: str) -> str:
        head, sep, rest = key.partition('/')
        return rest if sep and '@' not in head else key

    return {strip(key): value for key, value in metrics.items()}


def froc_summary(metrics: Mapping[str, Any]) -> dict[str, float]:
    """What ``--json-out`` writes.

    The seven FROC keys (fractions in [0, 1], in table order) when the
    metrics have them all; otherwise every scalar metric, prefix stripped.
    """
    stripped = strip_metric_prefix(metrics)
    if all(key in stripped for key in FROC_KEYS):
        return {key: float(stripped[key]) for key in FROC_KEYS}
    summary = {}
    for key, value in stripped.items():
        try:
            summary[key] = float(value)
        except (TypeError, ValueError):
            continue
    return summary


def write_json(path: str, data: Mapping[str, Any] | Sequence[Any]) -> None:
    """Write ``data`` as indented JSON, creating the folder."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)
        f.write('\n')
