"""Runner helpers: checkpoint loading on torch >= 2.6, CPU distributed
set-up and CPU mixed precision.

Importing this package allowlists the classes the project's own checkpoints
contain for ``torch.load(weights_only=True)`` (see ``checkpoint.py``); the
tools import it, and so should any code that loads a checkpoint the trainer
wrote.

The tools' config preparation moved to :mod:`a3d_det.utils.cli` and
:mod:`a3d_det.utils.runner_config`, the FROC summary keys to
:mod:`a3d_det.evaluation.froc_keys`; their old names here still resolve (on
first use, so importing the engine imports neither).
"""
from __future__ import annotations

import importlib
from typing import Any

from a3d_det.engine.atomic_checkpoint_hook import (ATOMIC_BACKEND, AtomicCheckpointHook,
                                                   AtomicLocalBackend, atomic_write)
from a3d_det.engine.checkpoint import (checkpoint_safe_globals, history_buffer_getattr,
                                       register_checkpoint_safe_globals)
from a3d_det.engine.cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from a3d_det.engine.distributed import (default_dist_backend, setup_distributed,
                                        slurm_env_to_torch_env)
from a3d_det.engine.mask_prediction import enable_masks_if_needed, masks_needed
from a3d_det.engine.resume import (ResumeSearch, checkpoint_problem, find_resume_checkpoint,
                                   resume_candidates)
from a3d_det.engine.skipped_samples_hook import SkippedSamplesHook

register_checkpoint_safe_globals()

#: Names that lived in ``a3d_det.engine.cli`` -> the module that has them now.
_MOVED = {
    'UserInputError': 'a3d_det.utils.errors',
    'add_common_args': 'a3d_det.utils.cli', 'run_cli': 'a3d_det.utils.cli',
    'write_json': 'a3d_det.utils.cli',
    **{name: 'a3d_det.utils.runner_config' for name in (
        'add_visualization_hook', 'build_runner', 'enable_amp', 'load_config',
        'set_froc_dump_file', 'set_load_from', 'set_resume', 'set_work_dir')},
    **{name: 'a3d_det.evaluation.froc_keys' for name in (
        'FROC_KEYS', 'froc_summary', 'strip_metric_prefix')},
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = [
    'enable_masks_if_needed', 'masks_needed',
    'ATOMIC_BACKEND', 'AtomicCheckpointHook', 'AtomicLocalBackend', 'atomic_write',
    'ResumeSearch', 'checkpoint_problem', 'find_resume_checkpoint', 'resume_candidates',
    'checkpoint_safe_globals', 'history_buffer_getattr',
    'register_checkpoint_safe_globals', 'CPUAmpOptimWrapper', 'SkippedSamplesHook',
    'default_dist_backend', 'setup_distributed', 'slurm_env_to_torch_env',
    *_MOVED,
]
