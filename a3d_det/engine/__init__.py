"""Runner helpers: checkpoint loading on torch >= 2.6, CPU distributed
set-up, CPU mixed precision and the config preparation of the tools.

Importing this package allowlists the classes the project's own checkpoints
contain for ``torch.load(weights_only=True)`` (see ``checkpoint.py``); the
tools import it, and so should any code that loads a checkpoint the trainer
wrote.
"""
from .checkpoint import (checkpoint_safe_globals, history_buffer_getattr,
                         register_checkpoint_safe_globals)
from .cli import (FROC_KEYS, UserInputError, add_common_args,
                  add_visualization_hook, build_runner, enable_amp, froc_summary, load_config, run_cli,
                  set_froc_dump_file, set_load_from, set_resume, set_work_dir,
                  skip_backbone_pretrained, strip_metric_prefix, write_json)
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .skipped_samples_hook import SkippedSamplesHook
from .distributed import (default_dist_backend, setup_distributed,
                          slurm_env_to_torch_env)

register_checkpoint_safe_globals()

__all__ = [
    'checkpoint_safe_globals', 'history_buffer_getattr',
    'register_checkpoint_safe_globals', 'FROC_KEYS', 'UserInputError',
    'add_common_args', 'build_runner',
    'add_visualization_hook', 'enable_amp', 'froc_summary', 'load_config',
    'run_cli', 'set_froc_dump_file', 'set_load_from', 'set_resume',
    'set_work_dir', 'skip_backbone_pretrained', 'strip_metric_prefix', 'write_json', 'CPUAmpOptimWrapper',
    'SkippedSamplesHook', 'default_dist_backend', 'setup_distributed', 'slurm_env_to_torch_env',
]
