"""The compiled CPU kernel of A3D's slice fusion (``a3d_det.models.fusion.a3d_cpu``),
against float64 einsum references and against the ``torch.matmul`` path."""
import os
import shutil
import stat
import warnings

import pytest
import torch

from a3d_det.models.backbones import DenseNet3D
from a3d_det.models.fusion import A3DConv, a3d_cpu
from tests.helpers.fusion import relu_then_a3d

HAS_COMPILER = shutil.which(os.environ.get('CC') or 'cc') is not None
pytestmark = pytest.mark.skipif(
    not HAS_COMPILER or os.environ.get('A3D_DET_CPU_KERNEL') == '0',
    reason='no C compiler, or the kernel switched off (the matmul path is tested by test_a3d.py)')


def forward_reference(x, mix):
    return torch.einsum('ckj,bcjhw->bckhw', mix.double(), x.double())


@pytest.fixture
def no_kernel(monkeypatch):
    """A3D as ``torch.matmul`` for the duration of a test."""
    monkeypatch.setattr(a3d_cpu, '_library', None)
    monkeypatch.setattr(a3d_cpu, '_loaded', True)


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """An empty cache directory and a loader that looks again (restored after)."""
    monkeypatch.setenv('A3D_DET_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(a3d_cpu, '_library', None)
    monkeypatch.setattr(a3d_cpu, '_loaded', False)
    return tmp_path / 'cache'


def test_the_kernel_builds_where_a_compiler_is():
    assert a3d_cpu.library() is not None
    assert a3d_cpu.applies(torch.ones(1, 2, 3, 4, 4), mix=torch.ones(2, 3, 3))


@pytest.mark.parametrize('d', range(1, a3d_cpu.MAX_SLICES + 1))
@pytest.mark.parametrize('batch,h,w', [(1, 7, 6), (2, 4, 8), (1, 1, 3)])
def test_forward_is_eq1(d, batch, h, w):
    """Z(c) = M(c) X(c) over the slices, also for pixel counts that are not a
    multiple of the vector width; with ``relu`` the input is rectified in place."""
    torch.manual_seed(d)
    x = torch.randn(batch, 5, d, h, w)
    mix = torch.randn(5, d, d)
    out = torch.empty_like(x)
    a3d_cpu.forward(x, mix, out, relu=False)
    torch.testing.assert_close(out.double(), forward_reference(x, mix), rtol=1e-5, atol=1e-5)
    rectified = x.clone()
    a3d_cpu.forward(rectified, mix, out, relu=True)
    assert torch.equal(rectified, x.relu())
    torch.testing.assert_close(out.double(), forward_reference(x.relu(), mix),
                               rtol=1e-5, atol=1e-5)


def test_forward_with_batch_norm_scale_and_shift():
    """x' = relu(x * scale + shift) per channel, fused; x itself unchanged."""
    torch.manual_seed(0)
    x = torch.randn(1, 6, 5, 7, 9)
    scale, shift = torch.rand(6) + 0.5, torch.randn(6)
    mix = torch.randn(6, 5, 5)
    before = x.clone()
    out = torch.empty_like(x)
    a3d_cpu.forward(x, mix, out, relu=True, in_place=False, scale=scale, shift=shift)
    assert torch.equal(x, before)
    normed = (x * scale.view(-1, 1, 1, 1) + shift.view(-1, 1, 1, 1)).relu()
    torch.testing.assert_close(out.double(), forward_reference(normed, mix),
                               rtol=1e-5, atol=1e-5)


def test_forward_norm_relu_only_at_cpu_inference():
    op = A3DConv(4, 2, 3, padding=1, num_slices=3)
    x = torch.randn(1, 4, 3, 6, 6)
    scale, shift = torch.ones(4), torch.zeros(4)
    assert op.forward_norm_relu(x, scale, shift) is None          # autograd on
    with torch.no_grad():
        torch.testing.assert_close(op.forward_norm_relu(x, scale, shift), op(x.relu()))
        assert op.forward_norm_relu(x.double(), scale.double(), shift.double()) is None


@pytest.mark.parametrize('d', [1, 3, 4, 7, 9])
@pytest.mark.parametrize('mask', [True, False])
def test_backward_is_the_transposed_product_and_the_weight_gradient(d, mask):
    torch.manual_seed(d)
    g = torch.randn(2, 6, d, 5, 7)
    y = torch.randn(2, 6, d, 5, 7).relu()
    mix = torch.randn(6, d, d)
    grad_in = torch.empty_like(g)
    grad_mix = torch.full((6, d, d), 0.5)          # added to
    a3d_cpu.backward(g, y, mix, grad_mix, grad_in, mask)
    expected = torch.einsum('ckj,bckhw->bcjhw', mix.double(), g.double())
    if mask:
        expected = expected * (y > 0)
    torch.testing.assert_close(grad_in.double(), expected, rtol=1e-5, atol=1e-5)
    expected_mix = 0.5 + torch.einsum('bckhw,bcjhw->ckj', g.double(), y.double())
    torch.testing.assert_close(grad_mix.double(), expected_mix, rtol=1e-5, atol=1e-4)
    # in place, without the weight gradient: the same input gradient
    a3d_cpu.backward(g, y, mix, None, g, mask)
    torch.testing.assert_close(g, grad_in, rtol=0, atol=0)


def test_nan_is_kept_by_the_relu_and_masked_like_threshold_backward():
    x = torch.tensor([float('nan'), -1.0, 2.0, 0.0]).view(1, 1, 1, 1, 4).repeat(1, 1, 3, 1, 5)
    mix = torch.eye(3).unsqueeze(0)
    out = torch.empty_like(x)
    rectified = x.clone()
    a3d_cpu.forward(rectified, mix, out, relu=True)
    assert torch.equal(rectified.isnan(), x.isnan())
    torch.testing.assert_close(rectified, x.relu(), equal_nan=True)
    g = torch.ones_like(x)
    a3d_cpu.backward(g, rectified, mix, None, g, mask=True)
    torch.testing.assert_close(g, torch.ops.aten.threshold_backward(torch.ones_like(x),
                                                                    rectified, 0))


def test_any_order_of_batch_channel_and_slice_axes():
    """Feature maps whose pixels are contiguous but whose (C, D) axes are
    transposed (the gradient of the 2D-convolution path) give the same results."""
    torch.manual_seed(0)
    x = torch.randn(2, 7, 4, 3, 5).transpose(1, 2)          # (B, C=4, D=7, H, W)
    assert not x.is_contiguous() and a3d_cpu.pixel_strides(x) is not None
    mix = torch.randn(4, 7, 7)
    out = torch.empty(2, 7, 4, 3, 5).transpose(1, 2)
    a3d_cpu.forward(x, mix, out, relu=False)
    torch.testing.assert_close(out.double(), forward_reference(x, mix), rtol=1e-5, atol=1e-5)
    grad_mix = torch.zeros(4, 7, 7)
    grad_in = torch.empty(2, 4, 7, 3, 5)
    a3d_cpu.backward(x, out, mix, grad_mix, grad_in, mask=False)
    torch.testing.assert_close(
        grad_in.double(), torch.einsum('ckj,bckhw->bcjhw', mix.double(), x.double()),
        rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_mix.double(), torch.einsum(
        'bckhw,bcjhw->ckj', x.double(), out.double()), rtol=1e-5, atol=1e-3)


def test_results_do_not_depend_on_the_thread_count():
    torch.manual_seed(0)
    x, g = torch.randn(1, 33, 5, 9, 9), torch.randn(1, 33, 5, 9, 9)
    mix = torch.randn(33, 5, 5)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out, grad_in, grad_mix = torch.empty_like(x), torch.empty_like(g), torch.zeros_like(mix)
            a3d_cpu.forward(x, mix, out, relu=False)
            a3d_cpu.backward(g, x, mix, grad_mix, grad_in, mask=False)
            results.append((out, grad_in, grad_mix))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_where_the_kernel_applies():
    x, mix = torch.randn(1, 2, 3, 4, 4), torch.randn(2, 3, 3)
    assert a3d_cpu.applies(x, mix=mix)
    assert not a3d_cpu.applies(x.double(), mix=mix.double())
    assert not a3d_cpu.applies(x[..., ::2], mix=mix)                  # strided pixels
    assert not a3d_cpu.applies(x, mix=mix.transpose(1, 2))
    assert not a3d_cpu.applies(torch.randn(1, 2, 10, 4, 4), mix=torch.randn(2, 10, 10))
    assert not a3d_cpu.applies(x.to('meta'), mix=mix.to('meta'))
    assert not a3d_cpu.applies(torch.empty(1, 2, 3, 0, 4))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not a3d_cpu.applies(x, mix=mix)


# (cin, k, stride, size, batch, bias): the three convolutions of slice_conv
CASES = {'view2d': (6, 1, 1, 9, 2, False),
         'slices2d': (6, 3, 1, 9, 1, True),
         'conv3d': (64, 3, 2, 48, 1, False)}


@pytest.mark.parametrize('kind', CASES)
@pytest.mark.parametrize('fused,other_use', [(True, False), (True, True), (False, False)])
def test_a3dconv_with_the_kernel_equals_the_matmul_path(monkeypatch, kind, fused, other_use):
    """Values and gradients (input, P, kernel, bias) of A3DConv, and of its
    dense-layer form ``forward_relu``, are those of the matmul path."""
    cin, k, stride, size, batch, bias = CASES[kind]
    torch.manual_seed(0)
    op = A3DConv(cin, 4, k, stride=stride, padding=k // 2, bias=bias, num_slices=7)
    pre = torch.randn(batch, cin, 7, size, size + 1)
    assert op.slice_conv_kind(pre.shape, pre.device) == kind
    calls = []
    real_forward = a3d_cpu.forward
    monkeypatch.setattr(a3d_cpu, 'forward',
                        lambda *a, **kw: calls.append(1) or real_forward(*a, **kw))
    with_kernel = relu_then_a3d(op, pre, fused, other_use)
    bias_grad = op.bias.grad if bias else None
    assert calls                                    # the kernel ran
    monkeypatch.setattr(a3d_cpu, '_library', None)
    monkeypatch.setattr(a3d_cpu, '_loaded', True)
    n = len(calls)
    plain = relu_then_a3d(op, pre, fused, other_use)
    assert len(calls) == n                          # and here it did not
    for a, b in zip(with_kernel, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    if bias:
        torch.testing.assert_close(bias_grad, op.bias.grad)


def test_kernel_gradients_of_the_parameters_alone():
    """An input that needs no gradient (a network's first layer): P and the
    kernel still get theirs, the same as on the matmul path."""
    torch.manual_seed(0)
    op = A3DConv(3, 2, 3, padding=1, num_slices=5)
    x = torch.randn(1, 3, 5, 6, 6)
    op(x).square().sum().backward()
    grads = op.fusion_weight.grad.clone(), op.weight.grad.clone()
    op.zero_grad()
    ref = op.conv_slices(torch.einsum('bcjhw,jkc->bckhw', x, op.fusion_weight))
    ref.square().sum().backward()
    torch.testing.assert_close(grads, (op.fusion_weight.grad, op.weight.grad))


def _saved_bytes(op, x):
    """Bytes of the tensors autograd keeps for backward of ``op.forward_relu``."""
    sizes = {}

    def pack(t):
        sizes[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    act = x.clone().requires_grad_(True) * 1.0     # a non-leaf, as a batch norm's output
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fused = getattr(op, 'forward_relu', None)
        fused(act) if fused else op(torch.relu(act))
    return sum(sizes.values())


def test_a3d_keeps_no_more_for_backward_than_no_fusion():
    """The fused map is recomputed in backward, not kept: A3D's dense-layer
    convolution keeps the ReLU output, P and the kernel, as no fusion keeps
    its input and kernel (the matmul path also keeps the fused map)."""
    from a3d_det.models.fusion import NoFusionConv
    x = torch.randn(1, 32, 7, 20, 20)
    a3d = A3DConv(32, 16, 3, padding=1, num_slices=7)
    nofusion = NoFusionConv(32, 16, 3, padding=1, num_slices=7)
    extra = a3d.fusion_weight.numel() * 4
    assert _saved_bytes(a3d, x) <= _saved_bytes(nofusion, x) + extra


def _densenet_step(seed):
    torch.manual_seed(seed)
    net = DenseNet3D(num_slices=5, fusion=dict(type='A3DConv'), block_config=(2, 3, 2)).train()
    x = torch.randn(1, 1, 5, 64, 64)
    out = net(x)
    sum((o * torch.randn_like(o)).sum() for o in out).backward()
    return [o.detach() for o in out], {n: p.grad for n, p in net.named_parameters()}


def test_densenet3d_with_the_kernel_equals_the_matmul_path(request):
    outs, grads = _densenet_step(0)
    request.getfixturevalue('no_kernel')
    plain_outs, plain_grads = _densenet_step(0)
    for a, b in zip(outs, plain_outs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    for name, g in grads.items():
        torch.testing.assert_close(g, plain_grads[name], rtol=1e-3, atol=1e-3, msg=name)


def test_built_once_per_source_compiler_and_cpu(tmp_path):
    path = a3d_cpu.build(directory=tmp_path)
    assert path.parent == tmp_path and path.name.startswith('a3d_cpu-')
    built = path.stat().st_mtime_ns
    assert a3d_cpu.build(directory=tmp_path) == path
    assert path.stat().st_mtime_ns == built
    assert [p.name for p in tmp_path.iterdir()] == [path.name]     # no temporary left


def test_without_a_compiler_a3d_warns_once_and_runs_as_matmul(monkeypatch, fresh_loader):
    monkeypatch.setenv('CC', str(fresh_loader / 'no-such-cc'))
    with pytest.warns(RuntimeWarning, match="no usable C compiler .*no-such-cc"):
        assert a3d_cpu.library() is None
    with warnings.catch_warnings():
        warnings.simplefilter('error')                 # not again
        assert a3d_cpu.library() is None
        op = A3DConv(3, 2, 1, num_slices=3)
        x = torch.randn(1, 3, 3, 4, 4)
        torch.testing.assert_close(op(x), op.conv_slices(
            torch.einsum('bcjhw,jkc->bckhw', x, op.fusion_weight)))


def test_a_failing_compile_names_the_command_and_its_error(monkeypatch, fresh_loader):
    fake = fresh_loader.parent / 'fakecc'
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && echo fakecc 1.0 && exit 0\n'
                    'echo "fakecc: error: cannot build" >&2\nexit 1\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv('CC', str(fake))
    with pytest.raises(RuntimeError, match='fakecc.*a3d_cpu.c.*cannot build'):
        a3d_cpu.build()
    assert not list(fresh_loader.glob('*.tmp'))
    with pytest.warns(RuntimeWarning, match='cannot build'):
        assert a3d_cpu.library() is None


def test_switched_off_by_the_environment(monkeypatch, fresh_loader):
    monkeypatch.setenv('A3D_DET_CPU_KERNEL', '0')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert a3d_cpu.library() is None
    assert not fresh_loader.exists()                   # nothing was built
