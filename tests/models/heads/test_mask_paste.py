"""Mask pasting with one host read gives torchvision's masks exactly."""
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste
from torchvision.ops import clip_boxes_to_image

from a3d_det.models.heads.mask_paste import paste_masks_in_image


@pytest.mark.parametrize('num, shape', [(1, (64, 64)), (50, (512, 512)), (9, (30, 90)),
                                        (40, (20, 20))])
def test_equals_torchvision(num, shape):
    gen = torch.Generator().manual_seed(num)
    masks = torch.rand(num, 1, 28, 28, generator=gen)
    corner = torch.rand(num, 2, generator=gen) * torch.tensor([shape[1], shape[0]]) * 1.2 - 10
    boxes = torch.cat([corner, corner + torch.rand(num, 2, generator=gen) * 80], 1)
    boxes = clip_boxes_to_image(boxes, shape)  # as the RoI head pastes them
    boxes[0] = torch.tensor([3.0, 4.0, 3.0, 4.0])  # a zero-size box
    ours = paste_masks_in_image(masks, boxes, shape)
    assert ours.shape == (num, 1) + shape
    assert torch.equal(ours, tv_paste(masks, boxes, shape))


def test_no_masks():
    out = paste_masks_in_image(torch.zeros(0, 1, 28, 28), torch.zeros(0, 4), (10, 12))
    assert out.shape == (0, 1, 10, 12)
