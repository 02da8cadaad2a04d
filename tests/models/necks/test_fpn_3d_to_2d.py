import pytest
import torch

from a3d_det.registry import MODELS


def _feats(batch, depth, size=32, channels=(8, 16, 32), strides=(4, 8, 16)):
    return [torch.randn(batch, c, depth, size // s, size // s) for c, s in zip(channels, strides)]


@pytest.mark.parametrize('depth', [3, 7])
def test_output_is_one_stride4_2d_map(depth):
    neck = MODELS.build(dict(type='FPN3Dto2D', in_channels=(8, 16, 32), strides=(4, 8, 16),
                             num_slices=depth, out_channels=12))
    out = neck(_feats(2, depth, size=64))
    assert out.shape == (2, 12, 16, 16)
    assert neck.stride == 4 and neck.out_channels == 12
    # one D x 1 x 1 conv per level squeezes the depth
    assert [tuple(c.kernel_size) for c in neck.depth_convs] == [(depth, 1, 1)] * 3


def test_every_level_reaches_the_output():
    neck = MODELS.build(dict(type='FPN3Dto2D', in_channels=(8, 16, 32), strides=(4, 8, 16),
                             num_slices=3, out_channels=8))
    feats = [f.requires_grad_() for f in _feats(1, 3)]
    neck(feats).sum().backward()
    for f in feats:
        assert f.grad is not None and f.grad.abs().sum() > 0


def test_top_down_uses_nearest_upsampling():
    neck = MODELS.build(dict(type='FPN3Dto2D', in_channels=(2, 2, 2), strides=(4, 8, 16),
                             num_slices=1, out_channels=2))
    feats = [torch.zeros(1, 2, 1, 8, 8), torch.zeros(1, 2, 1, 4, 4), torch.randn(1, 2, 1, 2, 2)]
    out = neck(feats)
    # only the coarsest level is non-zero: each of its cells covers a 4 x 4 block
    block = out[0, :, :4, :4]
    assert torch.allclose(block, block[:, :1, :1].expand_as(block))


def test_wrong_depth_is_a_clear_error():
    neck = MODELS.build(dict(type='FPN3Dto2D', in_channels=(8, 16, 32), strides=(4, 8, 16),
                             num_slices=3))
    with pytest.raises(ValueError, match='D = 3'):
        neck(_feats(1, 7))
    with pytest.raises(ValueError, match='equal length'):
        MODELS.build(dict(type='FPN3Dto2D', in_channels=(8, 16), strides=(4, 8, 16), num_slices=3))
