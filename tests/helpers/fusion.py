"""Shared steps of the A3D operator tests."""
import torch


def relu_then_a3d(op, pre, fused, other_use):
    """``op(relu(pre))`` (+ a second use of the ReLU output): loss, grads."""
    pre = pre.detach().requires_grad_(True)
    act = pre * 1.0                       # a non-leaf, as a batch norm's output
    if fused:
        out = op.forward_relu(act)        # act now holds relu(act)
        relu_out = act
    else:
        relu_out = torch.relu(act)
        out = op(relu_out)
    loss = (out * torch.linspace(-1, 2, out.numel()).view_as(out)).sum()
    if other_use:
        loss = loss + (relu_out ** 2).sum()
    op.zero_grad(set_to_none=True)
    loss.backward()
    return out.detach(), pre.grad, op.fusion_weight.grad, op.weight.grad
