"""A3D's slice fusion as a compiled CPU kernel (float32), used by
:class:`~a3d_det.models.fusion.A3DConv` where it applies.

The per-channel ``(D, D) @ (D, H*W)`` products of the fusion are small GEMMs
that batched BLAS runs at about half the speed of copying the feature map
(it packs, i.e. re-reads, the input). ``a3d_cpu.c`` holds a vector of pixels
of all D slices in registers while forming the D outputs, so the forward
(with the dense layer's ReLU, written back in place) and the backward (input
gradient, ReLU mask and the fusion weights' gradient in one pass) each read
and write every feature map once.

The C file is compiled on first use with the system C compiler (``$CC``,
default ``cc``; ``-O3 -march=native -fopenmp``) into
``$A3D_DET_CACHE_DIR`` (default ``~/.cache/a3d_det``), one library per source,
compiler and CPU, and loaded with ``ctypes``. Without a compiler (or with
``A3D_DET_CPU_KERNEL=0``) A3D runs as ``torch.matmul``, with the same values
and a one-time warning saying why. The kernel takes float32 CPU feature maps
whose pixels lie contiguously (any order of batch, channel and slice axes), of
at most :data:`MAX_SLICES` slices, outside autocast; anything else uses the
matmul path.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import warnings
from pathlib import Path

import torch
from torch import Tensor

#: the largest slice count the kernel is compiled for (a3d_cpu.c)
MAX_SLICES = 9

SOURCE = Path(__file__).with_name('a3d_cpu.c')
_FLAG_SETS = (['-O3', '-march=native', '-fopenmp'], ['-O3', '-fopenmp'])
_library: ctypes.CDLL | None = None
_loaded = False


def cache_dir() -> Path:
    """Where compiled libraries are kept."""
    if os.environ.get('A3D_DET_CACHE_DIR'):
        return Path(os.environ['A3D_DET_CACHE_DIR'])
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'a3d_det'


def _cpu_signature() -> str:
    """The CPU's feature flags (``-march=native`` code runs only where they hold)."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith(('flags', 'Features')):
                return line
    except OSError:
        pass
    return platform.processor()


def build(compiler: str | None = None, directory: Path | None = None) -> Path:
    """Compile ``a3d_cpu.c`` (unless already compiled for this source,
    compiler and CPU) and return the shared library's path.

    Raises:
        RuntimeError: no compiler, or it failed (the message names the command).
    """
    compiler = compiler or os.environ.get('CC') or 'cc'
    directory = directory or cache_dir()
    source = SOURCE.read_bytes()
    try:
        version = subprocess.run([compiler, '--version'], capture_output=True, text=True,
                                 check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(f'no usable C compiler {compiler!r} ({err})') from None
    key = hashlib.sha256(b'\0'.join(
        s.encode() if isinstance(s, str) else s
        for s in (source, compiler, version, _cpu_signature(), platform.machine(),
                  repr(_FLAG_SETS)))).hexdigest()[:16]
    path = directory / f'a3d_cpu-{key}.so'
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')   # processes build side by side
    for flags in _FLAG_SETS:
        cmd = [compiler, *flags, '-shared', '-fPIC', '-o', str(tmp), str(SOURCE)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode == 0:
            os.replace(tmp, path)
            return path
    tmp.unlink(missing_ok=True)
    last = (result.stderr.strip().splitlines() or ['no message'])[-1]
    raise RuntimeError(f'`{" ".join(cmd)}` failed: {last}')


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    f32, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    strides = ctypes.POINTER(i64)
    lib.a3d_fusion_forward.argtypes = ([f32, strides, f32, f32, f32, c_int, f32, f32, strides]
                                       + [i64] * 4 + [c_int])
    lib.a3d_fusion_backward.argtypes = ([f32, strides, f32, strides, f32, f32, f32, strides,
                                         c_int] + [i64] * 4 + [c_int])
    lib.a3d_fusion_forward.restype = lib.a3d_fusion_backward.restype = c_int
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded kernel, building it on the first call; ``None`` (with a
    warning, once) where it cannot be built or is switched off."""
    global _library, _loaded
    if not _loaded:
        _loaded = True
        if os.environ.get('A3D_DET_CPU_KERNEL', '1') == '0':
            return None
        try:
            _library = _load(build())
        except (RuntimeError, OSError) as err:
            warnings.warn(f"A3D's CPU slice-fusion kernel is unavailable, A3D runs as "
                          f'torch.matmul (same values, slower on CPU): {err}',
                          RuntimeWarning, stacklevel=3)
    return _library


def pixel_strides(t: Tensor) -> tuple[int, int, int] | None:
    """The strides of the first three axes of a ``(B, C, D, ...)`` feature
    map whose pixels (the axes after D) lie contiguously, else ``None``."""
    if t.dim() < 4:
        return None
    step = 1
    for size, stride in zip(reversed(t.shape[3:]), reversed(t.stride()[3:])):
        if size > 1 and stride != step:
            return None
        step *= size
    return t.stride(0), t.stride(1), t.stride(2)


def applies(*maps: Tensor, mix: Tensor | None = None) -> bool:
    """Whether the kernel computes the fusion of these feature maps
    ``(B, C, D, ...)`` (pixels contiguous) with the mixing matrices ``mix``
    ``(C, D, D)``: float32 CPU tensors, at most :data:`MAX_SLICES` slices,
    outside autocast."""
    tensors = maps if mix is None else (*maps, mix)
    return (all(t.device.type == 'cpu' and t.dtype == torch.float32 for t in tensors)
            and all(m.numel() > 0 and m.shape[2] <= MAX_SLICES and pixel_strides(m)
                    for m in maps)
            and (mix is None or mix.is_contiguous())
            and not torch.is_autocast_enabled('cpu')
            and library() is not None)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _strides(t: Tensor) -> ctypes.Array:
    return (ctypes.c_int64 * 3)(*pixel_strides(t))


def _check(status: int, d: int) -> None:
    if status:
        raise ValueError(f'the A3D CPU kernel takes 1 to {MAX_SLICES} slices, got {d}')


def forward(x: Tensor, mix: Tensor, out: Tensor, relu: bool, in_place: bool | None = None,
            scale: Tensor | None = None, shift: Tensor | None = None) -> None:
    """``out[b, c] = mix[c] @ x'[b, c]`` over the slice axis (``x``, ``out``:
    ``(B, C, D, ...)``, not overlapping; ``mix``: ``(C, D, D)``), where
    ``x' = x * scale[c] + shift[c]`` if ``scale`` (``(C,)``, with ``shift``)
    is given, rectified if ``relu``. ``in_place`` (default: ``relu``) writes
    ``x'`` over ``x``."""
    b, c, d = x.shape[:3]
    in_place = relu if in_place is None else in_place
    if scale is not None:
        scale, shift = scale.contiguous(), shift.contiguous()
    _check(library().a3d_fusion_forward(
        _ptr(x), _strides(x), _ptr(x) if in_place else None, _ptr(scale), _ptr(shift),
        int(relu), _ptr(mix), _ptr(out), _strides(out), b, c, d, x[0, 0, 0].numel(),
        torch.get_num_threads()), d)


def backward(grad: Tensor, y: Tensor, mix: Tensor, grad_mix: Tensor | None,
             grad_in: Tensor, mask: bool) -> None:
    """The fusion's backward from ``grad`` (of ``out``) and ``y`` (the fused
    input): ``grad_in[b, c] = mix[c]^T @ grad[b, c]`` (zero where ``y <= 0``
    if ``mask``; ``grad_in`` may be ``grad``) and, unless ``grad_mix`` is
    ``None``, ``grad_mix[c] += sum_b grad[b, c] @ y[b, c]^T``."""
    b, c, d = grad.shape[:3]
    _check(library().a3d_fusion_backward(
        _ptr(grad), _strides(grad), _ptr(y), _strides(y), _ptr(mix), _ptr(grad_mix),
        _ptr(grad_in), _strides(grad_in), int(mask), b, c, d, grad[0, 0, 0].numel(),
        torch.get_num_threads()), d)
