"""The dense block's buffer (batch 1) against the plain concatenation."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from a3d_det.models.backbones import DenseNet3D
from a3d_det.models.backbones.dense_block import _DenseBlock


def _step(net: DenseNet3D, x: torch.Tensor, weights: list[torch.Tensor],
          concat: bool, monkeypatch) -> tuple:
    """Outputs, parameter gradients, input gradient and buffers after one
    forward + backward of ``sum(out * weight)``."""
    if concat:
        monkeypatch.setattr(_DenseBlock, 'forward', _DenseBlock.forward_concat)
    x = x.clone().requires_grad_(True)
    net.zero_grad(set_to_none=True)
    outs = net(x, torch.full((x.shape[0],), 3.0))
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    monkeypatch.undo()
    return ([o.detach() for o in outs],
            {n: p.grad.clone() for n, p in net.named_parameters()}, x.grad,
            {n: b.clone() for n, b in net.named_buffers()})


@pytest.mark.parametrize('fusion', ['NoFusionConv', 'A3DConv', 'AlignShiftConv', 'P3DConv'])
@pytest.mark.parametrize('memory_efficient', [False, True])
def test_buffer_equals_concatenation(fusion, memory_efficient, monkeypatch):
    """Same outputs, gradients (parameters and input) and batch-norm statistics."""
    torch.manual_seed(0)
    net = DenseNet3D(num_slices=3, fusion=dict(type=fusion), block_config=(2, 3, 2),
                     memory_efficient=memory_efficient)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(1, 1, 3, 32, 32)
    weights = [torch.randn(1, c, 3, 32 // s, 32 // s)
               for c, s in zip(net.out_channels, net.strides)]
    fast = _step(net, x, weights, False, monkeypatch)
    net.load_state_dict(state)
    plain = _step(net, x, weights, True, monkeypatch)
    for a, b in zip(fast[0], plain[0]):
        torch.testing.assert_close(a, b)
    for name in plain[1]:
        torch.testing.assert_close(fast[1][name], plain[1][name], msg=name)
    torch.testing.assert_close(fast[2], plain[2])
    for name in plain[3]:
        torch.testing.assert_close(fast[3][name], plain[3][name], msg=name)


def test_buffer_in_eval_and_batch_above_one():
    torch.manual_seed(0)
    net = DenseNet3D(num_slices=3, fusion=dict(type='A3DConv'), block_config=(2, 2, 2)).eval()
    x = torch.randn(2, 1, 3, 32, 32)
    with torch.no_grad():
        both = net(x)                        # batch 2: concatenation
        single = [net(x[i:i + 1]) for i in range(2)]   # batch 1: buffer
    for level, out in enumerate(both):
        torch.testing.assert_close(out, torch.cat([s[level] for s in single]))


def test_inplace_change_of_an_output_is_refused_in_training():
    """Block outputs are views of the buffer: autograd refuses an in-place
    change (which would corrupt the gradient) instead of computing it wrong;
    without autograd it is allowed."""
    net = DenseNet3D(num_slices=3, fusion=dict(type='NoFusionConv'), block_config=(1, 1, 1))
    x = torch.randn(1, 1, 3, 32, 32, requires_grad=True)
    with pytest.raises(RuntimeError, match='modified inplace'):
        net(x)[0].add_(1)
    with torch.no_grad():
        out = net(x)[0]
        expected = out + 1
        torch.testing.assert_close(out.add_(1), expected)


@pytest.mark.parametrize('fusion', ['NoFusionConv', 'A3DConv'])
@pytest.mark.parametrize('memory_efficient', [False, True])
def test_buffer_holds_less_memory_for_backward(fusion, memory_efficient, monkeypatch):
    """The tensors autograd keeps for backward (distinct storages) take less
    memory than with per-layer concatenations: the layers' inputs are views of
    one buffer."""
    net = DenseNet3D(num_slices=3, fusion=dict(type=fusion), block_config=(3, 4, 4),
                     memory_efficient=memory_efficient).train()
    x = torch.randn(1, 1, 3, 64, 64)

    def saved_bytes() -> int:
        storages: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x)
        return sum(storages.values())
    buffered = saved_bytes()
    monkeypatch.setattr(_DenseBlock, 'forward', _DenseBlock.forward_concat)
    assert buffered < saved_bytes()


def test_backward_twice_through_a_retained_graph():
    """The block's shared gradient is started afresh by each backward: a second
    backward through the same graph adds the same gradients again."""
    torch.manual_seed(0)
    net = DenseNet3D(num_slices=3, fusion=dict(type='A3DConv'), block_config=(2, 2, 2))
    x = torch.randn(1, 1, 3, 32, 32, requires_grad=True)
    loss = sum((o * o).sum() for o in net(x))
    loss.backward(retain_graph=True)
    once = {n: p.grad.clone() for n, p in net.named_parameters()}
    once_x = x.grad.clone()
    loss.backward()
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, 2 * once[n], msg=n)
    torch.testing.assert_close(x.grad, 2 * once_x)


class _NewStorages(TorchDispatchMode):
    """Counts, per ATen op, the outputs written to a new storage."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs:
                self.ops[str(func.overloadpacket)] += 1
        return out


@pytest.mark.parametrize('fusion,kernel', [('NoFusionConv', False), ('A3DConv', False),
                                           ('A3DConv', True)])
def test_backward_writes_no_sum_of_layer_gradients(fusion, kernel, monkeypatch):
    """Backward accumulates the layers' input gradients in place in one block
    gradient (no new tensor per layer for autograd's sums), and A3D's fused
    ReLU masks its own gradient in place (no ReLU gradient tensor in the dense
    layers; the stem's and the two transitions' ReLUs still write one each),
    on the matmul path and through the CPU kernel alike."""
    from a3d_det.models.fusion import a3d_cpu
    if not kernel:
        monkeypatch.setattr(a3d_cpu, '_library', None)
        monkeypatch.setattr(a3d_cpu, '_loaded', True)
    elif a3d_cpu.library() is None:
        pytest.skip('no A3D CPU kernel (no C compiler)')
    net = DenseNet3D(num_slices=3, fusion=dict(type=fusion), block_config=(3, 3, 3)).train()
    loss = net(torch.randn(1, 1, 3, 32, 32))[-1].sum()   # each output used once
    counter = _NewStorages()
    with counter:
        loss.backward()
    assert counter.ops['aten.add'] == 0
    assert counter.ops['aten.clone'] == 3          # one block gradient per block
    relu_grads = 3 if fusion == 'A3DConv' else 3 + 2 * 9
    assert counter.ops['aten.threshold_backward'] == relu_grads


def test_grow_buffer_gradient_when_a_chain_is_also_used_outside():
    """The gradient of ``_GrowBuffer`` equals ``torch.cat``'s, also when an
    intermediate chain is used a second time (autograd then sums the handed-out
    view with that use into a new tensor)."""
    from a3d_det.models.backbones.dense_block import _BlockGradient, _GrowBuffer
    torch.manual_seed(0)
    x, a, b = (torch.randn(1, c, 2, 3, 3, requires_grad=True) for c in (4, 2, 2))
    weights = [torch.randn(1, c, 2, 3, 3) for c in (4, 6, 8)]

    def loss_of(grow: bool) -> torch.Tensor:
        if grow:
            buffer = torch.cat([x, a, b], 1).detach()
            state = _BlockGradient(8)
            c0, r0 = _GrowBuffer.apply(state, buffer, None, x)
            c1, r1 = _GrowBuffer.apply(state, buffer, c0, a)
            c2, _ = _GrowBuffer.apply(state, buffer, c1, b)
        else:
            c0 = r0 = x
            c1 = r1 = torch.cat([x, a], 1)
            c2 = torch.cat([x, a, b], 1)
        return ((r0 * weights[0]).sum() + (r1 * weights[1]).sum() + (c2 * weights[2]).sum()
                + (c1 ** 2).sum())                       # c1 used outside as well

    grads = []
    for grow in (True, False):
        for t in (x, a, b):
            t.grad = None
        loss_of(grow).backward()
        grads.append([t.grad.clone() for t in (x, a, b)])
    for g_grow, g_cat in zip(*grads):
        torch.testing.assert_close(g_grow, g_cat)


def _randomise_norms(net):
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.parametrize('fusion', ['NoFusionConv', 'A3DConv'])
def test_inference_normalises_without_new_feature_maps(fusion):
    """At CPU inference the dense layers' batch norms run as scale and shift
    into a reused buffer (norm1) and in place (norm2), or inside A3D's kernel:
    the values of the batch-norm modules, and no batch-norm call left in the
    dense layers."""
    net = DenseNet3D(num_slices=3, fusion=dict(type=fusion), block_config=(2, 3, 2)).eval()
    _randomise_norms(net)
    x = torch.randn(1, 1, 3, 64, 64)
    with torch.enable_grad():                       # autograd on: the modules run
        expected = net(x)
    calls = _Calls()
    with torch.no_grad(), calls:
        out = net(x)
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-5)
    norms = sum(v for k, v in calls.ops.items() if 'batch_norm' in k)
    assert norms == 1 + 2                           # the stem's and the transitions'
    # no fusion: scale and shift per norm; A3D's kernel applies them itself
    from a3d_det.models.fusion import a3d_cpu
    folded = fusion == 'A3DConv' and a3d_cpu.library() is not None
    assert calls.ops['aten.addcmul'] == (0 if folded else 2 * 7)


class _Calls(TorchDispatchMode):
    """Counts the calls of each ATen op."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))
