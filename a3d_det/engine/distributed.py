"""Distributed set-up that also works on machines without CUDA.

mmengine 0.10.7's launchers (``init_dist('pytorch' | 'slurm')``) call
``torch.cuda.set_device`` unconditionally, and its Runner wraps the model in
``MMDistributedDataParallel(device_ids=[LOCAL_RANK])``; both fail on a CPU
machine. :func:`setup_distributed` is called by ``tools/train.py`` and
``tools/test.py`` before the Runner is built:

* with CUDA it leaves everything to mmengine (NCCL by default);
* without CUDA it creates the ``gloo`` process group itself from the
  launcher's environment (``torchrun`` or ``srun``), so the Runner finds the
  group initialised and skips ``init_dist``; sets the model wrapper's
  ``device_ids=None`` (the form DDP requires for CPU modules); and drops
  ``sync_bn`` (``SyncBatchNorm`` has no CPU kernel), with a warning.
"""
from __future__ import annotations

import datetime
import inspect
import os
import subprocess
import warnings

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from torch.nn.parallel import DistributedDataParallel

from a3d_det.registry import MODEL_WRAPPERS

from a3d_det.utils.errors import UserInputError

__all__ = ['setup_distributed', 'default_dist_backend', 'slurm_env_to_torch_env']

_LAUNCHERS = ('none', 'pytorch', 'slurm')


def default_dist_backend() -> str:
    """``'nccl'`` when CUDA is available, else ``'gloo'``."""
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def slurm_env_to_torch_env(port: int | None = None) -> None:
    """Translate ``srun``'s variables into ``torch.distributed``'s env://.

    Mirrors mmengine's ``_init_dist_slurm`` (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR`` = first host of the node list,
    ``MASTER_PORT`` = ``port``, the environment's, or 29500) without its
    ``torch.cuda.set_device`` call.

    Args:
        port: master port; ``None`` keeps ``MASTER_PORT`` or uses 29500.
    """
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    local_rank = int(os.environ.get('SLURM_LOCALID', proc_id))
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['LOCAL_RANK'] = str(local_rank)
    os.environ['RANK'] = str(proc_id)


def _check_launcher_env(launcher: str) -> None:
    """Fail with a clear message when the launcher's variables are absent."""
    needed = {'pytorch': ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                          'MASTER_PORT'),
              'slurm': ('SLURM_PROCID', 'SLURM_NTASKS')}[launcher]
    missing = [name for name in needed if name not in os.environ]
    if missing:
        how = ('tools/dist_train.sh (torchrun)' if launcher == 'pytorch'
               else 'tools/slurm_train.sh (srun)')
        raise UserInputError(
            f'--launcher {launcher} needs the environment variables '
            f'{", ".join(missing)}; start the job with {how}')


def _cpu_model_wrapper_cfg(cfg: Config) -> dict:
    """The model wrapper config with ``device_ids=None`` for CPU DDP.

    Runner.wrap_model passes ``device_ids=[LOCAL_RANK]`` to DDP subclasses
    only as a default, so an explicit ``None`` in the config wins.
    """
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    if not wrapper:
        # Same settings as Runner.wrap_model uses when none is configured:
        # buffers are not re-broadcast at every forward (newer torch calls
        # this forward_sync_buffers and deprecates broadcast_buffers).
        wrapper = dict(type='MMDistributedDataParallel',
                       find_unused_parameters=cfg.get(
                           'find_unused_parameters', False))
        sync_flag = ('forward_sync_buffers' if 'forward_sync_buffers' in
                     inspect.signature(DistributedDataParallel).parameters
                     else 'broadcast_buffers')
        wrapper[sync_flag] = False
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper_cls = wrapper['type']
    if isinstance(wrapper_cls, str):
        wrapper_cls = MODEL_WRAPPERS.get(wrapper_cls)
    if isinstance(wrapper_cls, type) and issubclass(wrapper_cls,
                                                    DistributedDataParallel):
        wrapper['device_ids'] = None
    return wrapper


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` (and, on CPU, the process group) for ``launcher``.

    Args:
        cfg: the full config; ``cfg.launcher``, ``cfg.env_cfg.dist_cfg`` and,
            on CPU, ``cfg.model_wrapper_cfg`` and ``cfg.sync_bn`` are set.
        launcher: ``'none'``, ``'pytorch'`` (torchrun) or ``'slurm'`` (srun).

    Raises:
        ValueError: unknown launcher.
        UserInputError: the launcher's environment variables are missing.
    """
    if launcher not in _LAUNCHERS:
        raise ValueError(f'launcher must be one of {_LAUNCHERS}, got {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none':
        return
    _check_launcher_env(launcher)

    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    if torch.cuda.is_available():
        # NCCL on GPUs; mmengine's init_dist does the rest.
        dist_cfg.setdefault('backend', 'nccl')
        env_cfg['dist_cfg'] = dist_cfg
        return

    # No CUDA: gloo, process group made here (mmengine's launcher would call
    # torch.cuda.set_device), DDP with device_ids=None. The runtime config's
    # 'nccl' is the GPU default, so replacing it is not worth a warning.
    if dist_cfg.get('backend', 'gloo') not in ('gloo', 'nccl'):
        warnings.warn(f"dist_cfg.backend={dist_cfg['backend']!r} is not "
                      'available without CUDA; using gloo')
    dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    if launcher == 'slurm':
        slurm_env_to_torch_env(dist_cfg.get('port'))
    if not torch_dist.is_initialized():
        kwargs = {}
        if dist_cfg.get('timeout') is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
        torch_dist.init_process_group(
            backend='gloo', init_method='env://',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    cfg.model_wrapper_cfg = _cpu_model_wrapper_cfg(cfg)
    if cfg.get('sync_bn'):
        warnings.warn('sync_bn is not supported on CPU (no SyncBatchNorm '
                      'kernel); training with per-process BatchNorm')
        cfg.sync_bn = None
