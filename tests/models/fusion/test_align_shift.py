"""AlignShift's padding modes against the published rule, exact gradients,
and no host synchronisation in any operator's forward."""
from __future__ import annotations

from unittest import mock

import pytest
import torch

from a3d_det.models.backbones.densenet3d import DenseNet3D
from a3d_det.models.fusion import AlignShiftConv, TSMConv
from a3d_det.models.fusion.align_shift import check_thickness


def identity_op(cls, channels, d, **kw):
    op = cls(channels, channels, 1, num_slices=d, **kw)
    with torch.no_grad():
        op.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return op


def published_alignshift(x, thickness, ref=2.0, n_fold=8, padding_zero=False):
    """The published out-of-place ``AlignShiftConv.alignshift`` rule, written
    element by element: channels [0, fold) mix with the next slice,
    [fold, 2 fold) with the previous; at the volume's end the shifted group
    is ``pad_alpha * own`` with pad_alpha = alpha (zero padding) or 1
    (``shift_padding_zero=False``)."""
    B, C, D = x.shape[:3]
    fold = C // n_fold
    out = x.clone()
    for b in range(B):
        a = 1.0 - min(max(ref / float(thickness[b]), 0.0), 1.0)
        pad_a = a if padding_zero else 1.0
        for c in range(2 * fold):
            for d in range(D):
                nb = d + 1 if c < fold else d - 1
                if 0 <= nb < D:
                    out[b, c, d] = a * x[b, c, d] + (1 - a) * x[b, c, nb]
                else:
                    out[b, c, d] = pad_a * x[b, c, d]
    return out


@pytest.mark.parametrize('pad_mode, padding_zero', [('own', False), ('zero', True)])
@pytest.mark.parametrize('d', [1, 3, 5])
def test_matches_published_rule(pad_mode, padding_zero, d):
    torch.manual_seed(0)
    x = torch.randn(3, 16, d, 2, 2)
    thickness = torch.tensor([5.0, 1.0, 2.5])
    op = identity_op(AlignShiftConv, 16, d, pad_mode=pad_mode)
    torch.testing.assert_close(op(x, thickness),
                               published_alignshift(x, thickness, padding_zero=padding_zero))


def test_own_keeps_boundary_values():
    # 3 slices at 1 mm (alpha 0): the first group's last slice and the second
    # group's first slice keep their own value with 'own', are 0 with 'zero'.
    x = torch.arange(1.0, 1 + 8 * 3).view(1, 8, 3, 1, 1)
    own = identity_op(AlignShiftConv, 8, 3, pad_mode='own')(x, 1.0)
    zero = identity_op(AlignShiftConv, 8, 3, pad_mode='zero')(x, 1.0)
    assert own[0, 0, :, 0, 0].tolist() == [2.0, 3.0, 3.0]    # next slice, then own
    assert zero[0, 0, :, 0, 0].tolist() == [2.0, 3.0, 0.0]
    assert own[0, 1, :, 0, 0].tolist() == [4.0, 4.0, 5.0]    # own, then previous
    assert zero[0, 1, :, 0, 0].tolist() == [0.0, 4.0, 5.0]
    # at 5 mm (alpha 0.6) 'zero' keeps only alpha * own at the end
    zero5 = identity_op(AlignShiftConv, 8, 3, pad_mode='zero')(x, 5.0)
    assert zero5[0, 0, 2, 0, 0].item() == pytest.approx(0.6 * 3.0)


@pytest.mark.parametrize('pad_mode', ['own', 'zero'])
def test_gradient_by_finite_differences(pad_mode):
    """d loss / d x through ReLU -> AlignShiftConv (float64), compared with
    central differences: the published in-place version gets this wrong for
    the preceding ReLU; ours must not."""
    torch.manual_seed(0)
    op = AlignShiftConv(8, 3, 3, padding=1, num_slices=3, pad_mode=pad_mode).double()
    x = torch.randn(2, 8, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    thickness = torch.tensor([5.0, 1.0], dtype=torch.float64)
    w = torch.randn(2, 3, 3, 3, 3, dtype=torch.float64)

    def loss(inp):
        return (op(torch.relu(inp), thickness) * w).sum()

    loss(x).backward()
    eps = 1e-6
    flat = x.detach().clone().view(-1)
    numeric = torch.empty_like(flat)
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] += eps
        minus[i] -= eps
        with torch.no_grad():
            numeric[i] = (loss(plus.view_as(x)) - loss(minus.view_as(x))) / (2 * eps)
    torch.testing.assert_close(x.grad.view(-1), numeric, atol=1e-6, rtol=1e-6)


def test_pad_mode_validated_and_tsm_stays_zero():
    with pytest.raises(ValueError, match='pad_mode'):
        AlignShiftConv(8, 8, 1, pad_mode='reflect')
    x = torch.ones(1, 8, 2, 1, 1)
    out = identity_op(TSMConv, 8, 2)(x)
    assert out[0, 0, 1].item() == 0.0 and out[0, 1, 0].item() == 0.0


def test_check_thickness():
    check_thickness([0.625, 5.0])
    for bad in ([2.0, 0.0], [float('nan')], [None], -1.0, [float('inf')]):
        with pytest.raises(ValueError, match='thickness'):
            check_thickness(bad)


OPERATORS = ['NoFusionConv', 'I3DConv', 'P3DConv', 'ACSConv', 'TSMConv',
             'AlignShiftConv', 'A3DConv']


@pytest.mark.parametrize('fusion', OPERATORS)
def test_backbone_forward_never_synchronises(fusion):
    """No ``Tensor.__bool__`` / ``Tensor.item`` (a device synchronisation on
    GPU) during a DenseNet3D forward, in training and eval mode."""
    torch.manual_seed(0)
    model = DenseNet3D(num_slices=3, fusion=dict(type=fusion), block_config=(1, 1, 1),
                       num_init_features=8, growth_rate=4, bn_size=2)
    x = torch.randn(2, 1, 3, 16, 16)
    thickness = torch.tensor([5.0, 1.0])
    calls = []
    real_bool, real_item = torch.Tensor.__bool__, torch.Tensor.item

    def counting_bool(self):
        calls.append('__bool__')
        return real_bool(self)

    def counting_item(self):
        calls.append('item')
        return real_item(self)

    with mock.patch.object(torch.Tensor, '__bool__', counting_bool), \
            mock.patch.object(torch.Tensor, 'item', counting_item):
        bool(torch.tensor(True))  # the counter sees calls
        assert calls == ['__bool__']
        calls.clear()
        model.train()
        model(x, thickness)
        model.eval()
        with torch.no_grad():
            model(x, thickness)
    assert calls == []


def test_own_padding_reproduces_conv2d_on_every_slice():
    """On an input constant along depth, pad_mode='own' gives the 2D
    convolution on every slice (zero padding only on the inner ones)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 4, 3, padding=1)
    plane = torch.randn(2, 16, 6, 6)
    x = plane.unsqueeze(2).expand(2, 16, 3, 6, 6).contiguous()
    want = conv(plane)
    own = AlignShiftConv.from_conv2d(conv, num_slices=3, pad_mode='own')
    zero = AlignShiftConv.from_conv2d(conv, num_slices=3)
    with torch.no_grad():
        out_own, out_zero = own(x, torch.tensor([1.0, 5.0])), zero(x, torch.tensor([1.0, 5.0]))
    for d in range(3):
        torch.testing.assert_close(out_own[:, :, d], want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_zero[:, :, 1], want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out_zero[:, :, 0], want, atol=1e-3)
