"""setup_distributed: gloo process group and DDP device_ids=None on CPU."""
import socket

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from a3d_det.engine import setup_distributed
from a3d_det.utils.errors import UserInputError
from a3d_det.engine.distributed import (_cpu_model_wrapper_cfg,
                                        default_dist_backend,
                                        slurm_env_to_torch_env)

cpu_only = pytest.mark.skipif(torch.cuda.is_available(),
                              reason='CPU set-up (CUDA uses mmengine/NCCL)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _cfg(**kwargs) -> Config:
    return Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl')), **kwargs))


def test_launcher_none_changes_nothing():
    cfg = _cfg()
    setup_distributed(cfg, 'none')
    assert cfg.launcher == 'none'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg


def test_unknown_launcher():
    with pytest.raises(ValueError, match='launcher'):
        setup_distributed(_cfg(), 'mpi')


@pytest.mark.parametrize('launcher', ['pytorch', 'slurm'])
def test_missing_launcher_env_is_a_user_error(monkeypatch, launcher):
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT', 'SLURM_PROCID', 'SLURM_NTASKS'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserInputError, match='environment variables'):
        setup_distributed(_cfg(), launcher)


def test_default_backend():
    assert default_dist_backend() == ('nccl' if torch.cuda.is_available()
                                      else 'gloo')


def test_cpu_wrapper_cfg_defaults():
    wrapper = _cpu_model_wrapper_cfg(Config(dict(find_unused_parameters=True)))
    assert wrapper['type'] == 'MMDistributedDataParallel'
    assert wrapper['device_ids'] is None
    assert wrapper['find_unused_parameters'] is True
    # Buffers are not re-broadcast every forward (Runner's default).
    assert False in (wrapper.get('forward_sync_buffers'),
                     wrapper.get('broadcast_buffers'))


def test_cpu_wrapper_cfg_keeps_user_settings():
    cfg = Config(dict(model_wrapper_cfg=dict(
        type='MMDistributedDataParallel', find_unused_parameters=True,
        device_ids=[0])))
    wrapper = _cpu_model_wrapper_cfg(cfg)
    assert wrapper == dict(type='MMDistributedDataParallel',
                           find_unused_parameters=True, device_ids=None)


def test_slurm_env_translation(monkeypatch):
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_NTASKS', '4')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('MASTER_ADDR', 'node7')
    for name in ('MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    slurm_env_to_torch_env(port=29123)
    import os
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'],
            os.environ['LOCAL_RANK'], os.environ['MASTER_PORT'],
            os.environ['MASTER_ADDR']) == ('3', '4', '1', '29123', 'node7')


@cpu_only
def test_cpu_pytorch_launcher_makes_gloo_group(monkeypatch):
    """One-process 'torchrun' environment: the group exists afterwards, on
    gloo, and the config asks for DDP with device_ids=None, no SyncBN."""
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(_free_port()))
    assert not torch_dist.is_initialized()
    cfg = _cfg(sync_bn='torch')
    try:
        with pytest.warns(UserWarning, match='sync_bn'):
            setup_distributed(cfg, 'pytorch')
        assert torch_dist.is_initialized()
        assert torch_dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.launcher == 'pytorch'
        assert cfg.model_wrapper_cfg.device_ids is None
        assert cfg.sync_bn is None
        # The wrapper the Runner will build works on a CPU module.
        from mmengine.model import MMDistributedDataParallel
        model = MMDistributedDataParallel(module=torch.nn.Linear(2, 1),
                                          device_ids=None)
        out = model(torch.ones(3, 2))
        assert out.shape == (3, 1)
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
