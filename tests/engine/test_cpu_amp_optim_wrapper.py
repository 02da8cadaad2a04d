"""CPUAmpOptimWrapper: bfloat16 autocast in the forward, float32 parameters."""
import torch
from torch import nn

from a3d_det.engine import CPUAmpOptimWrapper
from a3d_det.registry import OPTIM_WRAPPERS


def test_forward_runs_in_bf16_and_step_updates_fp32_params():
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    before = model.weight.detach().clone()
    wrapper = OPTIM_WRAPPERS.build(dict(
        type='CPUAmpOptimWrapper',
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        clip_grad=dict(max_norm=35)))
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    with wrapper.optim_context(model):
        out = model(torch.randn(4, 8))
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).mean()
    wrapper.update_params(loss)
    assert model.weight.dtype == torch.float32
    assert not torch.equal(model.weight, before)


def test_outside_context_stays_fp32():
    model = nn.Linear(8, 2)
    assert model(torch.randn(1, 8)).dtype == torch.float32
