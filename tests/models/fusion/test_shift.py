"""TSM and AlignShift shift rules (n_fold=8)."""
import pytest
import torch

from a3d_det.models.fusion import AlignShiftConv, TSMConv


def identity_op(cls, channels, d, **kw):
    """A 1x1 operator with the identity kernel: its output is the shifted input."""
    op = cls(channels, channels, 1, num_slices=d, **kw)
    with torch.no_grad():
        op.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return op


def reference_shift(x, alpha):
    """Per-element loops over the rule: [0, C/8) next slice, [C/8, 2C/8) previous."""
    B, C, D = x.shape[:3]
    fold = C // 8
    out = x.clone()
    for b in range(B):
        a = alpha[b]
        for c in range(2 * fold):
            for d in range(D):
                nb = d + 1 if c < fold else d - 1
                neighbour = x[b, c, nb] if 0 <= nb < D else torch.zeros_like(x[b, c, d])
                out[b, c, d] = a * x[b, c, d] + (1 - a) * neighbour
    return out


def test_tsm_shift_rule():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 4, 3, 3)
    out = identity_op(TSMConv, 16, 4)(x)
    torch.testing.assert_close(out, reference_shift(x, [0.0, 0.0]))
    # spelled out for the first slice / last slice
    assert torch.equal(out[:, 0, 0], x[:, 0, 1])           # next slice
    assert torch.equal(out[:, 0, 3], torch.zeros_like(x[:, 0, 3]))  # after the last
    assert torch.equal(out[:, 2, 1], x[:, 2, 0])           # previous slice
    assert torch.equal(out[:, 2, 0], torch.zeros_like(x[:, 2, 0]))  # before the first
    assert torch.equal(out[:, 4:], x[:, 4:])               # the rest stay


def test_alignshift_interpolates_by_thickness():
    torch.manual_seed(0)
    x = torch.randn(3, 16, 3, 2, 2)
    thickness = torch.tensor([5.0, 1.0, 2.5])
    op = identity_op(AlignShiftConv, 16, 3)
    alpha = 1 - (2.0 / thickness).clamp(0, 1)            # [0.6, 0, 0.2]
    torch.testing.assert_close(op.alpha(thickness), alpha)
    torch.testing.assert_close(op(x, thickness), reference_shift(x, alpha.tolist()))


def test_alignshift_at_reference_thickness_is_tsm():
    torch.manual_seed(0)
    x = torch.randn(2, 24, 5, 3, 3)
    tsm = TSMConv(24, 6, 3, padding=1, num_slices=5)
    align = AlignShiftConv(24, 6, 3, padding=1, num_slices=5)
    align.load_state_dict(tsm.state_dict())
    torch.testing.assert_close(align(x, torch.tensor([2.0, 0.5])), tsm(x))
    torch.testing.assert_close(align(x, 2.0), tsm(x))


def test_alignshift_needs_valid_thickness():
    op = AlignShiftConv(8, 8, 1)
    x = torch.randn(2, 8, 3, 2, 2)
    with pytest.raises(ValueError, match='needs thickness'):
        op(x)
    with pytest.raises(ValueError, match=r'shape \(2,\)'):
        op(x, torch.ones(3))
    with pytest.raises(ValueError, match='positive'):
        op(x, 0.0)
    with pytest.raises(ValueError, match='positive'):
        op(x, float('nan'))


def test_shift_flows_gradients_to_neighbours():
    x = torch.zeros(1, 8, 3, 2, 2, requires_grad=True)
    op = identity_op(TSMConv, 8, 3)
    op(x)[0, 0, 0].sum().backward()        # channel 0, slice 0 reads slice 1
    assert x.grad[0, 0, 1].abs().sum() > 0 and x.grad[0, 0, 0].abs().sum() == 0
