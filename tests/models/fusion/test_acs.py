import pytest
import torch
import torch.nn.functional as F

from a3d_det.models.fusion import ACSConv, acs_split


@pytest.mark.parametrize('cout,expected', [(1, [1, 0, 0]), (2, [1, 1, 0]), (3, [1, 1, 1]),
                                           (4, [2, 1, 1]), (5, [2, 2, 1]), (32, [11, 11, 10]),
                                           (128, [43, 43, 42])])
def test_split_sizes(cout, expected):
    assert acs_split(cout) == expected
    assert ACSConv(4, cout, 3, padding=1).split == expected


def test_view_kernels_are_carved_from_the_2d_kernel():
    op = ACSConv(3, 5, 3, padding=1)
    wa, wc, ws = op.view_kernels()
    assert wa.shape == (2, 3, 1, 3, 3)
    assert wc.shape == (2, 3, 3, 1, 3)
    assert ws.shape == (1, 3, 3, 3, 1)
    assert torch.equal(wa[:, :, 0], op.weight[:2])
    assert torch.equal(wc[:, :, :, 0], op.weight[2:4])
    assert torch.equal(ws[..., 0], op.weight[4:])


@pytest.mark.parametrize('stride,bias', [(1, False), (2, True)])
def test_each_view_is_the_2d_conv_of_its_planes(stride, bias):
    """Axial channels: 2D conv of every (H, W) slice; coronal channels: 2D conv
    of every (D, W) plane; sagittal channels: 2D conv of every (D, H) plane."""
    torch.manual_seed(0)
    D, H, W = 5, 8, 7
    op = ACSConv(4, 7, 3, stride=stride, padding=1, bias=bias)
    x = torch.randn(2, 4, D, H, W)
    out = op(x)
    Ho, Wo = out.shape[3:]
    ref2d = F.conv2d(x[:, :, 0], op.weight, None, stride, 1)
    assert out.shape == (2, 7, D) + ref2d.shape[2:]
    (a, c, s), w, b = op.split, op.weight, op.bias
    ba, bc, bs = (b[:a], b[a:a + c], b[a + c:]) if bias else (None, None, None)
    for d in range(D):
        torch.testing.assert_close(out[:, :a, d], F.conv2d(x[:, :, d], w[:a], ba, stride, 1))
    for ho in range(Ho):
        plane = x[:, :, :, ho * stride, :]                       # (B, C, D, W)
        ref = F.conv2d(plane, w[a:a + c], bc, (1, stride), 1)
        torch.testing.assert_close(out[:, a:a + c, :, ho, :], ref)
    for wo in range(Wo):
        plane = x[:, :, :, :, wo * stride]                       # (B, C, D, H)
        ref = F.conv2d(plane, w[a + c:], bs, (1, stride), 1)
        torch.testing.assert_close(out[:, a + c:, :, :, wo], ref)


def test_valid_padding_crops_the_thin_views():
    torch.manual_seed(0)
    op = ACSConv(2, 3, 3, padding=0)
    x = torch.randn(1, 2, 3, 6, 6)
    out = op(x)
    assert out.shape == (1, 3, 3, 4, 4)
    # coronal channel (index 1): (D, W) planes of rows 1..4, padding (1, 0) in (D, W)
    for ho in range(4):
        ref = F.conv2d(x[:, :, :, ho + 1, :], op.weight[1:2], None, 1, (1, 0))
        torch.testing.assert_close(out[:, 1:2, :, ho, :], ref)


def test_even_kernel_is_rejected():
    with pytest.raises(ValueError, match='odd kernel_size'):
        ACSConv(2, 3, 2)


def test_1x1_kernel_views_coincide():
    torch.manual_seed(0)
    op = ACSConv(4, 5, 1, bias=True)
    x = torch.randn(2, 4, 3, 5, 6)
    wa, wc, ws = op.view_kernels()
    ref = torch.cat([F.conv3d(x, w, b) for w, b in
                     zip((wa, wc, ws), torch.split(op.bias, op.split))], 1)
    torch.testing.assert_close(op(x), ref)
