"""The ResNet3D configs: only the backbone differs from the DenseNet ones, the
neck and heads take its channels, the model builds and trains."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from a3d_det.registry import DATASETS, MODELS
from tests.helpers.model_inputs import lesion_sample

A3D = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'a3d')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _load(name: str) -> Config:
    return Config.fromfile(osp.join(A3D, name))


def _without(cfg: Config, *keys: str) -> dict:
    d = cfg.to_dict()
    for key in keys:
        node = d
        *parents, last = key.split('.')
        for p in parents:
            node = node[p]
        node.pop(last)
    return d


@pytest.mark.parametrize('slices', [3, 7])
def test_resnet50_configs_differ_from_densenet_only_in_the_backbone(slices, tmp_path):
    cfg = _load(f'a3d_resnet50_{slices}slice_deeplesion.py')
    dense = _load(f'a3d_densenet121_{slices}slice_deeplesion.py')
    assert _without(cfg, 'model.backbone') == _without(dense, 'model.backbone')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.depth, backbone.fusion.type) == ('ResNet3D', 50, 'A3DConv')
    assert backbone.pretrained == 'checkpoints/resnet50.pth'
    assert backbone.num_slices == slices
    assert all(cfg[loader].dataset.num_slices == slices for loader in LOADERS)
    # the paper-sized model builds without the ImageNet file; channels and
    # strides flow from the backbone to the neck
    init_default_scope('a3d_det')
    missing = str(tmp_path / 'resnet50.pth')
    cfg.model.backbone.pretrained = missing
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.backbone.out_channels == (256, 512, 1024)
    assert model.neck.in_channels == model.backbone.out_channels
    assert model.neck.strides == model.backbone.strides == (4, 8, 16)
    assert model.neck.num_slices == slices
    assert [c.in_channels for c in model.neck.depth_convs] == [256, 512, 1024]
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        MODELS.build(cfg.model.backbone).init_weights()     # on the CPU


def test_resnet50_model_trains_one_step():
    init_default_scope('a3d_det')
    cfg = _load('a3d_resnet50_3slice_deeplesion.py')
    cfg.model.backbone.pretrained = None
    cfg.model.neck.out_channels = 32          # narrow heads, the paper's backbone
    cfg.model.roi_head.bbox_head.fc_out_channels = 64
    cfg.model.roi_head.mask_head.conv_out_channels = 16
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    data = dict(inputs=[torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)],
                data_samples=[lesion_sample(64, True), lesion_sample(64, False)])
    before = model.backbone.layer1[0].conv2.fusion_weight.clone()
    log = model.train_step(data, optim)
    assert torch.isfinite(log['loss'])
    assert not torch.equal(before, model.backbone.layer1[0].conv2.fusion_weight)


def test_resnet18_synthetic_config(tiny_synthetic_root):
    cfg = _load('a3d_resnet18_3slice_synthetic.py')
    dense = _load('a3d_densenet121_3slice_synthetic.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.depth, backbone.fusion.type) == ('ResNet3D', 18, 'A3DConv')
    assert backbone.pretrained is None and backbone.norm_cfg.type == 'GN'
    # the DenseNet default's recipe and schedule; only the backbone differs
    assert _without(cfg, 'model.backbone') == _without(dense, 'model.backbone')
    assert cfg.train_cfg.max_iters == cfg.max_iters == cfg.param_scheduler[-1].end == 1000
    init_default_scope('a3d_det')
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(data_root=tiny_synthetic_root, split=None, synthetic=None)
    batch = pseudo_collate([DATASETS.build(dataset_cfg)[i] for i in range(2)])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert model.neck.in_channels == (64, 128, 256)
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert set(losses) >= {'loss_rpn_cls', 'loss_cls', 'loss_mask'}
    assert all(torch.isfinite(v) for v in losses.values())
