"""The 14 Table-2 configs: operator and slice count, consistent data pipeline,
one training step of each model."""
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

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')
METHODS = {'no_fusion': 'NoFusionConv', 'i3d': 'I3DConv', 'p3d': 'P3DConv', 'acs': 'ACSConv',
           'tsm': 'TSMConv', 'alignshift': 'AlignShiftConv', 'a3d': 'A3DConv'}
CASES = [(m, d) for m in METHODS for d in (3, 7)]
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _load(method: str, slices: int) -> Config:
    return Config.fromfile(osp.join(
        CONFIGS, method, f'{method}_densenet121_{slices}slice_deeplesion.py'))


def _tiny_heads(cfg: Config) -> dict:
    """The config's model with narrow heads (the backbone and operator unchanged)."""
    model = cfg.model.copy()
    model.neck.out_channels = 32
    model.roi_head.bbox_head.fc_out_channels = 64
    model.roi_head.mask_head.conv_out_channels = 16
    return model


@pytest.mark.parametrize('method,slices', CASES)
def test_operator_and_slice_count(method, slices):
    cfg = _load(method, slices)
    assert cfg.model.backbone.fusion.type == METHODS[method]
    assert cfg.model.backbone.num_slices == slices == cfg.num_slices
    for loader in LOADERS:
        dataset = cfg[loader].dataset
        assert dataset.num_slices == slices, loader
        # Every method resamples to 2 mm; AlignShift reads native
        # neighbours at >= 2 mm (published); 7 slices use the published offsets.
        assert dataset.slice_interval == 2.0, loader
        assert dataset.get('native_if_thicker', False) == (method == 'alignshift'), loader
        assert dataset.get('interpolation', 'linear') == \
            ('published' if slices == 7 else 'linear'), loader
        assert dataset.data_root == 'data/DeepLesion'
    # published batch: 2 images per GPU for AlignShift and TSM, 1 for the others
    assert cfg.train_dataloader.batch_size == (2 if method in ('alignshift', 'tsm') else 1)
    assert cfg.auto_scale_lr.base_batch_size == 4 * cfg.train_dataloader.batch_size
    assert cfg.model.roi_head.score_thr == (0.001 if method == 'alignshift' else 5e-5)
    if method == 'alignshift':
        assert cfg.model.backbone.fusion.pad_mode == 'own'
    assert cfg.model.backbone.pretrained == 'checkpoints/densenet121.pth'
    assert cfg.default_scope == 'a3d_det'


def test_paper_settings_are_the_defaults():
    cfg = _load('a3d', 3)
    rpn, roi = cfg.model.rpn_head, cfg.model.roi_head
    assert tuple(rpn.anchor_generator.sizes[0]) == tuple(4 * s for s in (4, 6, 8, 12, 24, 48))
    assert tuple(rpn.anchor_generator.aspect_ratios[0]) == (0.5, 1.0, 2.0)
    assert (rpn.batch_size_per_image, rpn.positive_fraction) == (32, 0.5)
    assert rpn.post_nms_top_n.testing == 300 and rpn.nms_thresh == 0.7
    assert dict(rpn.pre_nms_top_n) == dict(training=12000, testing=6000)
    assert dict(rpn.post_nms_top_n) == dict(training=2000, testing=300)
    assert (rpn.min_pos_iou, rpn.allowed_border) == (0.3, 0)
    assert roi.mask_head.loss_mask.eps == 0.01
    warmup = cfg.param_scheduler[0]
    assert (warmup.type, warmup.start_factor, warmup.end, warmup.by_epoch) == \
        ('LinearLR', 0.01, 500, False)
    ssr = [t for t in cfg.train_pipeline if t.type == 'RandomShiftScaleRotate'][0]
    assert (ssr.interpolation, ssr.border_mode, ssr.box_mode) == \
        ('bicubic', 'reflect101', 'corners')
    assert (ssr.shift_limit, ssr.scale_limit, ssr.rotate_limit, ssr.prob) == (0.04, 0.2, 15, 0.8)
    assert (roi.sampler.batch_size_per_image, roi.sampler.positive_fraction) == (64, 0.25)
    assert tuple(roi.box_coder.weights) == (10.0, 10.0, 5.0, 5.0)  # stds 0.1, 0.1, 0.2, 0.2
    assert roi.bbox_roi_extractor.output_size == 7 and roi.mask_roi_extractor.output_size == 14
    assert roi.bbox_head.num_fcs == 2 and roi.bbox_head.fc_out_channels == 2048
    assert roi.bbox_head.loss_bbox.beta == 1.0
    assert roi.mask_head.num_convs == 4 and roi.mask_head.conv_out_channels == 256
    assert roi.mask_head.loss_mask.type == 'DiceLoss'
    assert (roi.score_thr, roi.nms_iou, roi.max_per_img) == (5e-5, 0.5, 50)
    assert cfg.model.neck.out_channels == 512
    assert cfg.optim_wrapper.optimizer.lr == 0.02 and cfg.optim_wrapper.clip_grad.max_norm == 35


def test_paper_sized_model_builds_and_predicts():
    init_default_scope('a3d_det')
    model_cfg = _load('a3d', 3).model
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    assert model.roi_head.bbox_head.shared_fcs[0].in_features == 512 * 7 * 7
    assert model.rpn_head.anchor_generator.num_anchors_per_location() == [18]
    data = model.data_preprocessor(dict(inputs=[torch.randn(1, 3, 64, 64)],
                                        data_samples=[lesion_sample(64, False)]))
    with torch.no_grad():
        pred = model(**data, mode='predict')[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and pred.bboxes.shape[0] <= 50
    assert pred.masks.shape[1:] == (64, 64)


@pytest.mark.parametrize('method,slices', CASES)
def test_builds_without_the_imagenet_file_and_init_weights_names_it(method, slices, tmp_path):
    """Building reads no file (tools/test.py, inference, FLOPs need none);
    ``init_weights()``, which the Runner calls before training, raises naming
    the missing path."""
    init_default_scope('a3d_det')
    model_cfg = _load(method, slices).model
    missing = str(tmp_path / f'{method}{slices}' / 'densenet121.pth')
    model_cfg.backbone.pretrained = missing
    with torch.device('meta'):       # the paper-sized model, without its memory
        model = MODELS.build(model_cfg)
    assert model.backbone.pretrained == missing
    model_cfg = _tiny_heads(_load(method, slices))   # the same backbone, on the CPU
    model_cfg.backbone.pretrained = missing
    model = MODELS.build(model_cfg)
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        model.init_weights()


@pytest.mark.parametrize('method,slices', CASES)
def test_one_training_step(method, slices):
    init_default_scope('a3d_det')
    torch.manual_seed(0)
    model = MODELS.build(_tiny_heads(_load(method, slices)))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    data = dict(inputs=[torch.randn(1, slices, 64, 64), torch.randn(1, slices, 64, 64)],
                data_samples=[lesion_sample(64, True), lesion_sample(64, False)])  # half-empty batch
    before = model.backbone.conv0.weight.clone()
    log = model.train_step(data, optim)
    assert torch.isfinite(log['loss'])
    assert not torch.equal(before, model.backbone.conv0.weight)


@pytest.mark.parametrize('method', ['a3d', 'alignshift'])
def test_leaf_slice_count_reaches_pipeline_and_model(method, tiny_synthetic_root):
    """Data built from a 7-slice leaf feed the model built from the same leaf."""
    init_default_scope('a3d_det')
    cfg = _load(method, 7)
    dataset_cfg = cfg.train_dataloader.dataset
    assert dataset_cfg.ann_file == 'annotations/deeplesion_train.json'  # GrabCut masks
    dataset_cfg.update(type='SyntheticDeepLesionDataset', data_root=tiny_synthetic_root,
                       ann_file='DL_info.csv', split=None)
    dataset_cfg.pipeline = [t for t in dataset_cfg.pipeline if t.type != 'ResizeCT']
    dataset = DATASETS.build(dataset_cfg)
    batch = pseudo_collate([dataset[0]])
    assert batch['inputs'][0].shape[1] == 7
    torch.manual_seed(0)
    model = MODELS.build(_tiny_heads(cfg))
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
