"""torch.autograd.gradcheck of every operator in float64 on tiny shapes,
with respect to the input and every parameter (fast mode: the analytic and
numerical Jacobians are compared along random directions)."""
import pytest
import torch
from torch.func import functional_call

from a3d_det.models.fusion import (A3DConv, ACSConv, AlignShiftConv, I3DConv, NoFusionConv,
                                   P3DConv, TSMConv)


@pytest.mark.parametrize('cls', [NoFusionConv, I3DConv, P3DConv, ACSConv, TSMConv,
                                 AlignShiftConv, A3DConv])
def test_gradcheck(cls):
    torch.manual_seed(0)
    op = cls(8, 4, 3, stride=2, padding=1, bias=True, num_slices=3).double()
    names = [n for n, _ in op.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in op.named_parameters()]
    x = torch.randn(2, 8, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    thickness = torch.tensor([5.0, 1.0], dtype=torch.float64)

    def f(x, *ps):
        args = (x, thickness) if cls.takes_thickness else (x,)
        return functional_call(op, dict(zip(names, ps)), args)

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5, fast_mode=True)
    if cls is A3DConv:
        assert 'fusion_weight' in names
