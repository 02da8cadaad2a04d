"""from_conv2d: the converted operator reproduces the 2D convolution on an
input constant along depth (on every slice, or the inner ones where the
operator reaches beyond the volume)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from a3d_det.models.fusion import (A3DConv, ACSConv, AlignShiftConv, I3DConv, NoFusionConv,
                                   P3DConv, TSMConv)

D = 5


def depth_constant(cin, h=9, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(2, cin, 1, h, w, generator=g)
    return img, img.expand(-1, -1, D, -1, -1).contiguous()


def run(op, x):
    return op(x, torch.tensor([2.0, 6.0])) if op.takes_thickness else op(x)


@pytest.mark.parametrize('k,stride,padding,bias', [(3, 1, 1, True), (3, 2, 1, False),
                                                   (1, 1, 0, False), (7, 2, 3, True)])
@pytest.mark.parametrize('cls,kw,slices', [
    (NoFusionConv, {}, slice(None)),
    (P3DConv, {}, slice(None)),
    (A3DConv, {'init_noise': 0.0}, slice(None)),
    (I3DConv, {}, 'inner'),
    (TSMConv, {}, slice(1, -1)),
    (AlignShiftConv, {}, slice(1, -1)),
])
def test_from_conv2d_reproduces_conv2d(cls, kw, slices, k, stride, padding, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 6, k, stride, padding, bias=bias)
    op = cls.from_conv2d(conv, num_slices=D, **kw)
    assert isinstance(op, cls) and op.num_slices == D
    img, x = depth_constant(16)
    expected = conv(img[:, :, 0])
    out = run(op, x)
    assert out.shape == (2, 6, D) + expected.shape[2:]
    if slices == 'inner':           # I3D: slices whose K depth taps lie inside
        slices = slice(k // 2, D - k // 2)
    sel = out[:, :, slices]
    torch.testing.assert_close(sel, expected.unsqueeze(2).expand_as(sel), rtol=1e-5, atol=1e-5)


def test_i3d_inflation_and_boundary():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 3, 3, padding=1, bias=False)
    op = I3DConv.from_conv2d(conv, num_slices=D)
    assert op.weight.shape == (3, 4, 3, 3, 3)
    for t in range(3):
        torch.testing.assert_close(op.weight[:, :, t], conv.weight / 3)
    img, x = depth_constant(4)
    # the first slice sees one zero-padded tap: 2/3 of the 2D response
    torch.testing.assert_close(op(x)[:, :, 0], conv(img[:, :, 0]) * 2 / 3, rtol=1e-5, atol=1e-5)


def test_p3d_is_no_fusion_on_any_input_before_training():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 5, 3, padding=1, bias=True)
    op = P3DConv.from_conv2d(conv, num_slices=3)
    assert op.temporal_weight.shape == (5, 5, 3, 1, 1)
    assert torch.equal(op.temporal_weight[:, :, 1, 0, 0], torch.eye(5))
    assert op.temporal_weight[:, :, [0, 2]].abs().sum() == 0
    # a 1x1 convolution gets a 3x1x1 depth convolution (Table 1), or as given
    assert P3DConv(4, 5, 1).temporal_weight.shape == (5, 5, 3, 1, 1)
    assert P3DConv(4, 5, 1, depth_kernel_size=1).temporal_weight.shape == (5, 5, 1, 1, 1)
    assert P3DConv(4, 5, 7, padding=3).temporal_weight.shape == (5, 5, 7, 1, 1)
    x = torch.randn(2, 4, 3, 6, 6)
    nofusion = NoFusionConv.from_conv2d(conv, num_slices=3)
    torch.testing.assert_close(op(x), nofusion(x))


def test_acs_from_conv2d_axial_third_reproduces_conv2d():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 6, 3, 1, 1, bias=True)
    op = ACSConv.from_conv2d(conv, num_slices=D)
    assert torch.equal(op.weight, conv.weight) and torch.equal(op.bias, conv.bias)
    img, x = depth_constant(16)
    a = op.split[0]
    out, expected = op(x), conv(img[:, :, 0])
    for d in range(D):
        torch.testing.assert_close(out[:, :a, d], expected[:, :a], rtol=1e-5, atol=1e-5)


def test_from_conv2d_rejects_what_it_cannot_convert():
    with pytest.raises(ValueError, match='groups=1'):
        NoFusionConv.from_conv2d(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match='square'):
        NoFusionConv.from_conv2d(nn.Conv2d(4, 4, (3, 1)))
    with pytest.raises(ValueError, match='zero padding'):
        NoFusionConv.from_conv2d(nn.Conv2d(4, 4, 3, padding='same'))
    with pytest.raises(ValueError, match='odd kernel_size'):
        I3DConv.from_conv2d(nn.Conv2d(4, 4, 2))
    with pytest.raises(ValueError, match='odd depth kernel'):
        P3DConv.from_conv2d(nn.Conv2d(4, 4, 2))
    with pytest.raises(TypeError):
        NoFusionConv.from_conv2d(nn.Linear(3, 3))


def test_from_conv2d_keeps_dtype():
    conv = nn.Conv2d(2, 2, 3).double()
    op = A3DConv.from_conv2d(conv, num_slices=3)
    assert op.weight.dtype == torch.float64 and op.fusion_weight.dtype == torch.float64
    assert torch.equal(op.weight, conv.weight)


@pytest.mark.parametrize('shape,kernel,stride,padding,bias', [
    ((1, 8, 3, 12, 10), 1, 1, 0, False),     # 1 x 1: a 2D convolution of the (B, C, D*H, W) view
    ((1, 8, 3, 12, 10), 3, 1, 1, True),      # small K x K: 2D on the (B*D, C, H, W) slices
    ((1, 8, 5, 13, 11), 3, 2, 1, False),
    ((1, 4, 3, 2000, 12), 3, 1, 1, False),   # above oneDNN's 3D threshold: conv3d
    ((2, 8, 3, 12, 10), 3, 1, 1, False),     # batch 2: conv3d
    ((2, 8, 3, 12, 10), 1, 2, 0, True),
])
def test_conv_slices_equals_the_3d_convolution(shape, kernel, stride, padding, bias):
    """Whichever kernel ``conv_slices`` picks, it is the 1 x K x K 3D convolution
    (values and gradients)."""
    from a3d_det.models.fusion import NoFusionConv
    torch.manual_seed(0)
    op = NoFusionConv(shape[1], 6, kernel, stride=stride, padding=padding, bias=bias,
                      num_slices=shape[2])
    x = torch.randn(shape, requires_grad=True)
    y = op(x)
    ref = torch.nn.functional.conv3d(x, op.weight.unsqueeze(2), op.bias, (1, stride, stride),
                                     (0, padding, padding))
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ref)
    gx, gw = torch.autograd.grad(y, (x, op.weight), g)
    rx, rw = torch.autograd.grad(ref, (x, op.weight), g)
    torch.testing.assert_close(gx, rx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-4)
