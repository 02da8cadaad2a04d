"""RoI box head with shared fully connected layers (Faster R-CNN / FPN box head)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from a3d_det.registry import MODELS


@MODELS.register_module()
class SharedFCBBoxHead(nn.Module):
    """``num_fcs`` shared FC layers, then a classifier and a box regressor.

    The official A3D configuration: 2 shared FC of 2048 on 7 x 7 RoI features,
    class-specific regression, softmax cross-entropy and smooth-L1 (beta 1.0).

    Class order of ``cls_score`` is torchvision's: column 0 = background,
    columns 1..num_classes = foreground. ``bbox_pred`` holds 4 deltas per
    foreground class.

    Args:
        in_channels: channels of the RoI features (given by the RoI head).
        roi_feat_size: side of the RoI features (7).
        num_fcs: number of shared FC layers.
        fc_out_channels: width of the FC layers.
        num_classes: foreground classes (1: lesion).
        loss_cls: classification loss config.
        loss_bbox: regression loss config.
    """

    def __init__(self,
                 in_channels: int,
                 roi_feat_size: int = 7,
                 num_fcs: int = 2,
                 fc_out_channels: int = 2048,
                 num_classes: int = 1,
                 loss_cls: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 loss_bbox: dict = dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)
                 ) -> None:
        super().__init__()
        self.num_classes = num_classes
        layers = []
        width = in_channels * roi_feat_size * roi_feat_size
        for _ in range(num_fcs):
            layers += [nn.Linear(width, fc_out_channels), nn.ReLU(inplace=True)]
            width = fc_out_channels
        self.shared_fcs = nn.Sequential(*layers)
        self.fc_cls = nn.Linear(width, num_classes + 1)
        self.fc_reg = nn.Linear(width, 4 * num_classes)
        for fc in self.shared_fcs:
            if isinstance(fc, nn.Linear):
                nn.init.xavier_uniform_(fc.weight)
                nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.zeros_(self.fc_reg.bias)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)

    def forward(self, roi_feats: Tensor) -> tuple[Tensor, Tensor]:
        """
        Args:
            roi_feats: (N, C, S, S) RoI-aligned features.

        Returns:
            cls_score: (N, num_classes + 1) logits; bbox_pred: (N, 4 * num_classes).
        """
        x = self.shared_fcs(roi_feats.flatten(1))
        return self.fc_cls(x), self.fc_reg(x)

    def loss(self, cls_score: Tensor, bbox_pred: Tensor, labels: Tensor,
             bbox_targets: Tensor) -> dict[str, Tensor]:
        """
        Args:
            cls_score: (N, num_classes + 1) logits of the N sampled RoIs.
            bbox_pred: (N, 4 * num_classes) deltas.
            labels: (N,) int64 torchvision labels (0 = background).
            bbox_targets: (N, 4) encoded targets (rows of negatives unused).

        Returns:
            ``loss_cls`` (mean over N) and ``loss_bbox`` (sum over positives / N).
        """
        pos = torch.where(labels > 0)[0]
        deltas = bbox_pred.reshape(bbox_pred.shape[0], self.num_classes, 4)
        pos_deltas = deltas[pos, labels[pos] - 1]
        return dict(
            loss_cls=self.loss_cls(cls_score, labels),
            loss_bbox=self.loss_bbox(pos_deltas, bbox_targets[pos],
                                     avg_factor=labels.numel()))
