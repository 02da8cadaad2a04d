import pytest
import torch
import torch.nn.functional as F

from a3d_det.models.fusion import A3DConv, fuse_slices
from a3d_det.registry import MODELS
from tests.helpers.fusion import relu_then_a3d


def algorithm1(x, P, w2d, stride=1, padding=0):
    """Algorithm 1 of the paper, literally: einsum then Conv3D with W2D unsqueezed."""
    fused = torch.einsum('bcdhw,dkc->bckhw', x, P)
    return F.conv3d(fused, w2d.unsqueeze(2), None, (1, stride, stride),
                    (0, padding, padding))


@pytest.mark.parametrize('d,k,stride,padding', [(3, 3, 1, 1), (7, 1, 1, 0), (5, 3, 2, 1)])
def test_a3d_matches_algorithm1(d, k, stride, padding):
    torch.manual_seed(0)
    op = A3DConv(6, 4, k, stride=stride, padding=padding, num_slices=d)
    x = torch.randn(2, 6, d, 9, 8)
    expected = algorithm1(x, op.fusion_weight, op.weight, stride, padding)
    torch.testing.assert_close(op(x), expected, rtol=1e-5, atol=1e-5)


def test_fuse_slices_is_the_per_channel_matrix_product_of_eq1():
    torch.manual_seed(1)
    x = torch.randn(1, 3, 4, 2, 2)
    P = torch.randn(4, 4, 3)
    out = fuse_slices(x, P)
    for c in range(3):
        # Eq. 1: X(c)[k] = sum_d P(c)[d, k] X_i(c)[d]
        ref = torch.einsum('dk,dhw->khw', P[:, :, c], x[0, c])
        torch.testing.assert_close(out[0, c], ref)


def test_fusion_weight_shape_and_init():
    torch.manual_seed(0)
    op = A3DConv(16, 8, 3, padding=1, num_slices=7)
    assert op.weight.shape == (8, 16, 3, 3)
    assert op.fusion_weight.shape == (7, 7, 16)
    noise = op.fusion_weight - torch.eye(7).unsqueeze(-1)
    assert noise.abs().max() <= 0.1
    assert noise.abs().max() > 0.05          # actually perturbed
    assert not torch.equal(op.fusion_weight[:, :, 0], op.fusion_weight[:, :, 1])
    exact = A3DConv(16, 8, 3, num_slices=7, init_noise=0.0)
    assert torch.equal(exact.fusion_weight, torch.eye(7).unsqueeze(-1).expand(7, 7, 16))


def test_a3d_is_asymmetric_and_mixes_all_slices():
    """Each output slice depends on every input slice with its own weights."""
    torch.manual_seed(0)
    op = A3DConv(2, 2, 1, num_slices=5)
    x = torch.zeros(1, 2, 5, 3, 3, requires_grad=True)
    op(x)[0, :, 0].sum().backward()
    assert (x.grad[0].abs().sum(dim=(0, 2, 3)) > 0).all()


def test_gradients_reach_fusion_weight_and_kernel():
    torch.manual_seed(0)
    op = A3DConv(4, 3, 3, padding=1, num_slices=3)
    op(torch.randn(2, 4, 3, 5, 5)).square().mean().backward()
    assert op.fusion_weight.grad is not None
    assert op.fusion_weight.grad.abs().sum() > 0
    assert op.weight.grad.abs().sum() > 0


def test_wrong_number_of_slices_is_a_clear_error():
    op = A3DConv(4, 3, 1, num_slices=3)
    with pytest.raises(ValueError, match='built for 3 slices'):
        op(torch.randn(1, 4, 5, 4, 4))
    with pytest.raises(ValueError, match=r'expects \(B, 4, D, H, W\)'):
        op(torch.randn(1, 5, 3, 4, 4))
    with pytest.raises(ValueError, match='built for 3 slices'):
        op.forward_relu(torch.randn(1, 4, 5, 4, 4) * 1.0)


def test_built_from_registry():
    op = MODELS.build(dict(type='A3DConv', in_channels=4, out_channels=2,
                           kernel_size=3, padding=1, num_slices=7))
    assert isinstance(op, A3DConv) and op.fusion_weight.shape == (7, 7, 4)


@pytest.mark.parametrize('batch,k,other_use', [(1, 1, False), (1, 3, False),
                                               (2, 3, False), (1, 3, True)])
def test_forward_relu_equals_relu_then_forward(batch, k, other_use):
    """The fused ReLU + slice mixing node gives the values and gradients of a
    separate ReLU followed by the operator (also when the ReLU output is used
    again, e.g. by a residual)."""
    torch.manual_seed(0)
    op = A3DConv(6, 4, k, padding=k // 2, num_slices=5)
    pre = torch.randn(batch, 6, 5, 7, 6)
    fused = relu_then_a3d(op, pre, True, other_use)
    plain = relu_then_a3d(op, pre, False, other_use)
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    if not other_use:                     # the ReLU's mask reached the gradient
        assert fused[1][pre <= 0].abs().max() == 0


def test_forward_relu_gradcheck():
    torch.manual_seed(0)
    op = A3DConv(2, 2, 1, num_slices=3).double()
    pre = torch.randn(1, 2, 3, 2, 2, dtype=torch.double)
    pre = pre + 0.1 * pre.sign()          # no value at the ReLU kink
    mix = op.fusion_weight.detach().permute(2, 1, 0).contiguous().requires_grad_(True)
    x = pre.requires_grad_(True)

    from a3d_det.models.fusion.a3d import _ReLUSliceFusion

    def fn(x, mix):       # gradcheck's output gradients are not ours to overwrite
        return _ReLUSliceFusion.apply(x * 1.0, mix, False)[0]
    assert torch.autograd.gradcheck(fn, (x, mix))


def test_forward_relu_under_autocast():
    """bf16 autocast on CPU (the benchmark's --amp): the backward computes in
    the gradient's dtype and returns float32 gradients close to the plain path."""
    torch.manual_seed(0)
    op = A3DConv(8, 4, 3, padding=1, num_slices=5)
    pre = torch.randn(1, 8, 5, 6, 6)
    grads = []
    for fused in (True, False):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            g = relu_then_a3d(op, pre, fused, False)
        grads.append(g)
    for a, b in zip(*grads):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a.float(), b.float(), rtol=0.05, atol=0.05)
    assert grads[0][2].dtype == torch.float32
