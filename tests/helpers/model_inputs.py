"""Inputs shared by the model and config tests: a one-lesion data sample and
2D networks with non-trivial batch-norm statistics."""
from __future__ import annotations

import torch
from mmengine.structures import InstanceData
from torch import nn

from a3d_det.structures.lesion_data_sample import LesionDataSample


def lesion_sample(size: int, with_lesion: bool) -> LesionDataSample:
    """A ``size`` x ``size`` sample with one box-shaped lesion, or none."""
    sample = LesionDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                            scale_factor=(1.0, 1.0), thickness=2.5))
    gt = InstanceData()
    gt.bboxes = torch.tensor([[12.0, 16.0, 40.0, 36.0]][:int(with_lesion)]).reshape(-1, 4)
    gt.labels = torch.zeros(int(with_lesion), dtype=torch.int64)
    masks = torch.zeros(int(with_lesion), size, size, dtype=torch.bool)
    masks[:, 16:36, 12:40] = True
    gt.masks = masks
    sample.gt_instances = gt
    return sample


def randomise_bn(net: nn.Module) -> nn.Module:
    """Non-trivial batch-norm weights and running statistics (in place)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net
