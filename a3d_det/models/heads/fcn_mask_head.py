"""Fully convolutional mask head (Mask R-CNN, He et al. 2017, Fig. 4)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from a3d_det.registry import MODELS


@MODELS.register_module()
class FCNMaskHead(nn.Module):
    """``num_convs`` 3 x 3 convolutions, a 2x deconvolution and per-class logits.

    The official A3D configuration: 4 convolutions of 256 channels on 14 x 14
    RoI features, 28 x 28 masks, Dice loss (BCE selectable via ``loss_mask``).

    Args:
        in_channels: channels of the RoI features (given by the RoI head).
        num_convs: number of 3 x 3 convolutions.
        conv_out_channels: their width.
        num_classes: foreground classes (1: lesion).
        loss_mask: mask loss config (``DiceLoss`` or ``BinaryCrossEntropyLoss``).
    """

    def __init__(self,
                 in_channels: int,
                 num_convs: int = 4,
                 conv_out_channels: int = 256,
                 num_classes: int = 1,
                 loss_mask: dict = dict(type='DiceLoss', loss_weight=1.0)) -> None:
        super().__init__()
        layers = []
        width = in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(width, conv_out_channels, 3, padding=1),
                       nn.ReLU(inplace=True)]
            width = conv_out_channels
        self.convs = nn.Sequential(*layers)
        self.upsample = nn.ConvTranspose2d(width, conv_out_channels, 2, stride=2)
        self.relu = nn.ReLU(inplace=True)
        self.conv_logits = nn.Conv2d(conv_out_channels, num_classes, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
        self.loss_mask = MODELS.build(loss_mask)

    def forward(self, roi_feats: Tensor) -> Tensor:
        """
        Args:
            roi_feats: (N, C, S, S) RoI-aligned features (S = 14).

        Returns:
            (N, num_classes, 2S, 2S) mask logits.
        """
        return self.conv_logits(self.relu(self.upsample(self.convs(roi_feats))))

    def loss(self, mask_logits: Tensor, mask_targets: Tensor,
             labels: Tensor) -> dict[str, Tensor]:
        """
        Args:
            mask_logits: (P, num_classes, M, M) logits of the positive RoIs.
            mask_targets: (P, M, M) binary targets.
            labels: (P,) int64 torchvision labels (>= 1).

        Returns:
            ``loss_mask``.
        """
        index = torch.arange(mask_logits.shape[0], device=mask_logits.device)
        return dict(loss_mask=self.loss_mask(mask_logits[index, labels - 1],
                                             mask_targets))
