"""A tiny 3D backbone and sample builder for detector tests (the real
DenseNet3D is exercised through the configs in tests/configs)."""
import pytest
import torch
from mmengine.structures import InstanceData
from torch import nn

from a3d_det.registry import MODELS
from a3d_det.structures.lesion_data_sample import LesionDataSample


@MODELS.register_module(force=True)
class TinyBackbone3D(nn.Module):
    """Three strided 1 x k x k convolutions: (B, 1, D, H, W) -> strides 4, 8, 16."""

    def __init__(self, num_slices: int = 3) -> None:
        super().__init__()
        self.num_slices = num_slices
        self.out_channels = (8, 16, 32)
        self.strides = (4, 8, 16)
        self.stages = nn.ModuleList([
            nn.Conv3d(1, 8, (1, 4, 4), stride=(1, 4, 4)),
            nn.Conv3d(8, 16, (1, 2, 2), stride=(1, 2, 2)),
            nn.Conv3d(16, 32, (1, 2, 2), stride=(1, 2, 2))])
        self.seen_thickness = None

    def forward(self, x, thickness=None):
        self.seen_thickness = thickness
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


def tiny_detector_cfg(num_slices: int = 3) -> dict:
    return dict(
        type='LesionMaskRCNN',
        backbone=dict(type='TinyBackbone3D', num_slices=num_slices),
        neck=dict(type='FPN3Dto2D', out_channels=16),
        rpn_head=dict(type='LesionRPNHead', anchor_generator=dict(
            type='AnchorGenerator', sizes=((16, 24, 32, 48, 96, 192),),
            aspect_ratios=((0.5, 1.0, 2.0),))),
        roi_head=dict(
            type='LesionRoIHead',
            bbox_roi_extractor=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
            bbox_head=dict(type='SharedFCBBoxHead', fc_out_channels=32),
            mask_roi_extractor=dict(type='RoIAlign', output_size=14, sampling_ratio=2),
            mask_head=dict(type='FCNMaskHead', conv_out_channels=8),
            proposal_matcher=dict(type='Matcher', high_threshold=0.5, low_threshold=0.5),
            sampler=dict(type='BalancedPositiveNegativeSampler', batch_size_per_image=64,
                         positive_fraction=0.25),
            box_coder=dict(type='BoxCoder', weights=(10.0, 10.0, 5.0, 5.0))))


def make_sample(h: int, w: int, boxes, scale: float = 1.0, thickness: float = 2.0,
                with_masks: bool = True) -> LesionDataSample:
    """A packed sample of an (h, w) input resized by ``scale`` from the original."""
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    sample = LesionDataSample(metainfo=dict(
        img_shape=(h, w), ori_shape=(round(h / scale), round(w / scale)),
        scale_factor=(scale, scale), thickness=thickness, file_name='000001_01_01/010.png'))
    gt = InstanceData()
    gt.bboxes = boxes
    gt.labels = torch.zeros(len(boxes), dtype=torch.int64)
    if with_masks:
        masks = torch.zeros(len(boxes), h, w, dtype=torch.bool)
        for m, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
            m[y1:y2, x1:x2] = True
        gt.masks = masks
    sample.gt_instances = gt
    return sample


@pytest.fixture
def tiny_detector():
    torch.manual_seed(0)
    return MODELS.build(tiny_detector_cfg())


@pytest.fixture
def sample_factory():
    """``make_sample`` as a fixture (test modules cannot import conftest)."""
    return make_sample


@pytest.fixture
def detector_cfg_factory():
    """``tiny_detector_cfg`` as a fixture."""
    return tiny_detector_cfg
