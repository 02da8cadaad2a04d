"""The embedded default: configs/a3d/a3d_densenet121_3slice_synthetic.py."""
import os.path as osp

from mmengine.config import Config

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'a3d',
                  'a3d_densenet121_3slice_synthetic.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def test_synthetic_default_is_iteration_based_at_native_size():
    cfg = Config.fromfile(CONFIG)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters > 0 and cfg.train_cfg.val_interval > 0
    assert cfg.default_hooks.checkpoint.by_epoch is False
    assert cfg.default_hooks.checkpoint.interval > 0
    assert all(not s.by_epoch for s in cfg.param_scheduler)
    assert cfg.model.backbone.fusion.type == 'A3DConv'
    assert cfg.model.backbone.pretrained is None  # random initialisation
    assert cfg.sync_bn is None
    for loader in LOADERS:
        dataset = cfg[loader].dataset
        assert dataset.type == 'SyntheticDeepLesionDataset'
        assert dataset.num_slices == cfg.model.backbone.num_slices == 3
        # native size: no resize in any pipeline
        assert 'ResizeCT' not in [t.type for t in dataset.pipeline]
    assert cfg.val_evaluator.type == 'DeepLesionFROCMetric'


def test_data_roots_are_overridable():
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({f'{loader}.dataset.data_root': '/elsewhere' for loader in LOADERS})
    assert all(cfg[loader].dataset.data_root == '/elsewhere' for loader in LOADERS)
