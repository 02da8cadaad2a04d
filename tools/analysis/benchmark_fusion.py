"""Speed of the 3D context fusion operators (forward + backward), as ratios to
no fusion: at DenseNet-121 layer shapes and for the whole DenseNet3D backbone.

    python tools/analysis/benchmark_fusion.py --num-slices 7 --shape 256 256
    python tools/analysis/benchmark_fusion.py --ops NoFusionConv A3DConv --no-layers

Runs are interleaved (one run of every operator per round, the order rotated
each round) so that load from other processes hits all operators alike; the
table reports medians over rounds and each median's ratio to NoFusionConv.
Uses CUDA when available (``--device``), synchronising around each run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from a3d_det.models.backbones import DenseNet3D
from a3d_det.models.fusion import A3DConv
from a3d_det.registry import MODELS

OPERATORS = ('NoFusionConv', 'I3DConv', 'P3DConv', 'ACSConv', 'TSMConv',
             'AlignShiftConv', 'A3DConv')
REFERENCE = 'A3DConvEinsum'


@MODELS.register_module(name=REFERENCE, force=True)
class A3DConvEinsum(A3DConv):
    """Benchmark reference: A3D written literally as Algorithm 1 (einsum, then
    the 1 x K x K convolution); same parameters and results as ``A3DConv``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_slices(torch.einsum('bcdhw,dkc->bckhw', x, self.fusion_weight))


def densenet_layer_shapes(shape: Tuple[int, int]) -> List[Tuple[str, int, int, int, int, int]]:
    """Representative convolutions of the dense blocks at input ``shape``:
    (name, Cin, Cout, K, H, W) of the middle layer of each block."""
    h, w = shape[0] // 4, shape[1] // 4
    rows = []
    for block, (c0, layers) in enumerate(((64, 6), (128, 12), (256, 24))):
        cin = c0 + 32 * (layers // 2)
        rows.append((f'block{block + 1} 1x1', cin, 128, 1, h, w))
        rows.append((f'block{block + 1} 3x3', 128, 32, 3, h, w))
        h, w = h // 2, w // 2
    return rows


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(cases: Dict[str, Callable[[], None]], rounds: int, warmup: int,
                     device: torch.device, timer: Callable[[], float] = time.perf_counter
                     ) -> Dict[str, List[float]]:
    """Seconds per call of every case; one call of each per round, rotated.
    ``timer``: ``time.perf_counter`` (wall) or ``time.process_time`` (CPU time
    of this process, less sensitive to other processes on a shared machine)."""
    names = list(cases)
    for _ in range(warmup):
        for n in names:
            cases[n]()
    _sync(device)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            _sync(device)
            t0 = timer()
            cases[n]()
            _sync(device)
            times[n].append(timer() - t0)
    return times


def _fwd_bwd(module: torch.nn.Module, x: torch.Tensor, thickness: torch.Tensor
             ) -> Callable[[], None]:
    takes = getattr(module, 'takes_thickness', False) or isinstance(module, DenseNet3D)

    def run() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        out = module(x, thickness) if takes else module(x)
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.float().mean() for o in outs).backward()
    return run


def layer_cases(op: str, d: int, shape: Tuple[int, int], device: torch.device,
                batch: int) -> Dict[str, Callable[[], None]]:
    cases = {}
    thickness = torch.full((batch,), 5.0, device=device)
    for name, cin, cout, k, h, w in densenet_layer_shapes(shape):
        module = MODELS.build(dict(type=op, in_channels=cin, out_channels=cout,
                                   kernel_size=k, padding=k // 2, num_slices=d)).to(device)
        x = torch.randn(batch, cin, d, h, w, device=device, requires_grad=True)
        cases[name] = _fwd_bwd(module, x, thickness)
    return cases


def format_table(title: str, rows: Sequence[str], cols: Sequence[str],
                 times: Dict[Tuple[str, str], List[float]],
                 base: str = 'NoFusionConv') -> str:
    """Markdown table per (row, col): median ms, and the median over rounds of
    the ratio to ``base`` timed in the same round (pairs runs close in time,
    so slow drifts of the machine's load cancel)."""
    lines = [f'### {title}', '', '| | ' + ' | '.join(cols) + ' |',
             '|---|' + '---|' * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            t = statistics.median(times[(r, c)])
            ratio = statistics.median(a / b for a, b in zip(times[(r, c)], times[(r, base)]))
            cells.append(f'{t * 1e3:.1f} ms ({ratio:.2f}x)')
        lines.append(f'| {r} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--ops', nargs='+', default=list(OPERATORS),
                   help=f'operators to time; {REFERENCE} is A3D as a literal einsum')
    p.add_argument('--num-slices', type=int, default=7)
    p.add_argument('--shape', type=int, nargs=2, default=[256, 256], help='input H W')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--rounds', type=int, default=7, help='interleaved rounds (median)')
    p.add_argument('--layer-rounds', type=int, default=21)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--no-layers', action='store_true', help='skip the per-layer table')
    p.add_argument('--no-backbone', action='store_true', help='skip the backbone table')
    p.add_argument('--memory-efficient', action='store_true',
                   help='backbone with activation checkpointing')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--timer', choices=('wall', 'cpu'), default='wall',
                   help='wall-clock time, or CPU time of the process (steadier when '
                        'other processes share the CPU; use with --threads 1)')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    unknown = [o for o in args.ops if MODELS.get(o) is None]
    if unknown:
        print(f'benchmark_fusion.py: error: unknown operators {unknown}; '
              f'choose from {list(OPERATORS)}', file=sys.stderr)
        return 2
    if min(args.shape) < 16 or args.num_slices < 1 or args.batch < 1 or args.rounds < 1:
        print('benchmark_fusion.py: error: need --shape >= 16, positive --num-slices, '
              '--batch and --rounds', file=sys.stderr)
        return 2
    try:
        device = torch.device(args.device)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as e:
        print(f'benchmark_fusion.py: error: device {args.device!r} unusable: {e}',
              file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    timer = time.perf_counter if args.timer == 'wall' else time.process_time
    ops = list(dict.fromkeys(['NoFusionConv'] + list(args.ops)))
    d, shape = args.num_slices, tuple(args.shape)
    torch.manual_seed(0)
    dev_name = torch.cuda.get_device_name(device) if device.type == 'cuda' \
        else f'CPU, {torch.get_num_threads()} threads'
    print(f'# Fusion operators, forward + backward, D={d}, {shape[0]}x{shape[1]} input, '
          f'batch {args.batch}, {dev_name}, {args.timer} time, torch {torch.__version__}\n')

    if not args.no_layers:
        cases = {}
        for op in ops:
            for name, fn in layer_cases(op, d, shape, device, args.batch).items():
                cases[(name, op)] = fn
        times = time_interleaved(cases, args.layer_rounds, args.warmup, device, timer)
        rows = [r[0] for r in densenet_layer_shapes(shape)]
        print(format_table(f'Layers (median of {args.layer_rounds} interleaved rounds, '
                           'ratio to NoFusionConv)', rows, ops, times) + '\n')

    if not args.no_backbone:
        x = torch.randn(args.batch, 1, d, *shape, device=device)
        thickness = torch.full((args.batch,), 5.0, device=device)
        cases = {}
        for op in ops:
            net = DenseNet3D(num_slices=d, fusion=dict(type=op),
                             memory_efficient=args.memory_efficient).to(device).train()
            cases[('backbone', op)] = _fwd_bwd(net, x, thickness)
        times = time_interleaved(cases, args.rounds, args.warmup, device, timer)
        print(format_table(f'DenseNet3D backbone (median of {args.rounds} interleaved '
                           'rounds, ratio to NoFusionConv)', ['backbone'], ops, times))
    return 0


if __name__ == '__main__':
    sys.exit(main())
