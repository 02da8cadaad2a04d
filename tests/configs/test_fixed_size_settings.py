"""Settings for fixed-size CT on GPUs: cuDNN autotuning, pinned batches,
non-blocking copies, in every DeepLesion config."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from a3d_det.registry import MODELS

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')
DEEPLESION = sorted(glob.glob(osp.join(CONFIGS, '*', '*_deeplesion.py')))
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def test_every_deeplesion_config_is_found():
    assert len(DEEPLESION) >= 14


@pytest.mark.parametrize('path', DEEPLESION, ids=osp.basename)
def test_cudnn_benchmark_and_pinned_memory(path):
    cfg = Config.fromfile(path)
    assert cfg.env_cfg.cudnn_benchmark is True
    for loader in LOADERS:
        assert cfg[loader].pin_memory is True, loader
    # The preprocessor's default copies without blocking; no config turns it off.
    assert cfg.model.data_preprocessor.get('non_blocking', True) is True


def test_built_loader_pins_and_model_copies_without_blocking(tiny_synthetic_root):
    """The A3D config built: its dataloaders pin memory, its model's data
    preprocessor copies with non_blocking=True (data: a tiny synthetic tree
    in DeepLesion format in place of data/DeepLesion)."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'a3d', 'a3d_densenet121_3slice_deeplesion.py'))
    init_default_scope('a3d_det')
    for loader in LOADERS:
        loader_cfg = cfg[loader].copy()
        loader_cfg.update(num_workers=0, persistent_workers=False)
        loader_cfg.dataset.update(type='SyntheticDeepLesionDataset',
                                  data_root=tiny_synthetic_root,
                                  ann_file='DL_info.csv', split=None)
        dataloader = Runner.build_dataloader(loader_cfg)
        assert dataloader.pin_memory is True, loader
    model_cfg = cfg.model.copy()
    model_cfg.backbone.pretrained = None
    model = MODELS.build(model_cfg)
    assert model.data_preprocessor._non_blocking is True
