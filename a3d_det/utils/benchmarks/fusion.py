"""Speed of the 3D context fusion operators (forward + backward), as ratios to no fusion.

Two tables: representative convolutions of DenseNet-121's dense blocks, and
the whole DenseNet3D backbone. Each cell is the median time over interleaved
rounds and the median ratio to NoFusionConv timed in the same round::

    python tools/analysis/benchmark.py --task fusion --num-slices 7 --shape 256 256
    python tools/analysis/benchmark.py --task fusion --ops A3DConv A3DConvEinsum --no-layers
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from a3d_det.models.backbones import DenseNet3D
from a3d_det.models.fusion import A3DConv
from a3d_det.registry import MODELS
from a3d_det.utils.benchmarks import METHODS
from a3d_det.utils.errors import UserInputError
from a3d_det.utils.timing import Timings, device_description, median_ratio, time_interleaved

BASE = 'NoFusionConv'
REFERENCE = 'A3DConvEinsum'


@MODELS.register_module(name=REFERENCE, force=True)
class A3DConvEinsum(A3DConv):
    """Benchmark reference: A3D written literally as Algorithm 1 (einsum, then
    the 1 x K x K convolution); same parameters and results as ``A3DConv``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_slices(torch.einsum('bcdhw,dkc->bckhw', x, self.fusion_weight))


def densenet_layer_shapes(shape: tuple[int, int]) -> list[tuple[str, int, int, int, int, int]]:
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


def forward_backward(module: torch.nn.Module, x: torch.Tensor,
                     thickness: torch.Tensor) -> Callable[[], None]:
    """One training step's compute of ``module`` on ``x`` (no optimiser)."""
    takes = getattr(module, 'takes_thickness', False) or isinstance(module, DenseNet3D)

    def run() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        out = module(x, thickness) if takes else module(x)
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.float().mean() for o in outs).backward()
    return run


def format_table(title: str, rows: list[str], ops: list[str],
                 timings: dict[tuple[str, str], Timings], clock: str) -> str:
    """Markdown: per (row, operator) the median ms and the median ratio to no fusion."""
    lines = [f'### {title}', '', '| | ' + ' | '.join(ops) + ' |', '|---|' + '---|' * len(ops)]
    for r in rows:
        base = timings[(r, BASE)].seconds(clock)
        cells = [f'{timings[(r, op)].median(clock) * 1e3:.1f} ms '
                 f'({median_ratio(timings[(r, op)].seconds(clock), base):.2f}x)' for op in ops]
        lines.append(f'| {r} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--ops', nargs='+', default=list(METHODS),
                        help=f'operators to time; {REFERENCE} is A3D as a literal einsum')
    parser.add_argument('--num-slices', type=int, default=7)
    parser.add_argument('--shape', type=int, nargs=2, default=[256, 256], help='input H W')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--layer-rounds', type=int, default=21,
                        help='interleaved rounds of the layer table')
    parser.add_argument('--no-layers', action='store_true', help='skip the layer table')
    parser.add_argument('--no-backbone', action='store_true', help='skip the backbone table')
    parser.add_argument('--memory-efficient', action='store_true',
                        help='backbone with activation checkpointing')
    parser.add_argument('--timer', choices=('wall', 'cpu'), default='wall',
                        help='the clock of the tables: wall, or CPU time of the process '
                        '(steadier when other processes share the CPU; with --threads 1)')
    parser.set_defaults(rounds=7)


def run(args: argparse.Namespace) -> dict:
    unknown = [op for op in args.ops if MODELS.get(op) is None]
    if unknown:
        raise UserInputError(f'unknown operators {unknown}; choose from '
                             f'{list(METHODS) + [REFERENCE]}')
    if min(args.shape) < 16 or min(args.num_slices, args.batch, args.layer_rounds) < 1:
        raise UserInputError('need --shape >= 16 and positive --num-slices, --batch, '
                             '--layer-rounds')
    device = torch.device(args.device)
    ops = list(dict.fromkeys([BASE] + list(args.ops)))
    d, shape, batch = args.num_slices, tuple(args.shape), args.batch
    thickness = torch.full((batch,), 5.0, device=device)
    torch.manual_seed(0)
    print(f'# Fusion operators, forward + backward, D={d}, {shape[0]}x{shape[1]} input, '
          f'batch {batch}, {device_description(device)}, {args.timer} time, '
          f'torch {torch.__version__}\n')
    tables = {}
    if not args.no_layers:
        cases = {}
        for name, cin, cout, k, h, w in densenet_layer_shapes(shape):
            x = torch.randn(batch, cin, d, h, w, device=device, requires_grad=True)
            for op in ops:
                module = MODELS.build(dict(type=op, in_channels=cin, out_channels=cout,
                                           kernel_size=k, padding=k // 2, num_slices=d))
                cases[(name, op)] = forward_backward(module.to(device), x, thickness)
        tables['layers'] = time_interleaved(cases, args.layer_rounds, args.warmup, device)
        print(format_table(f'Layers (median of {args.layer_rounds} interleaved rounds, '
                           f'ratio to {BASE})', [r[0] for r in densenet_layer_shapes(shape)],
                           ops, tables['layers'], args.timer) + '\n')
    if not args.no_backbone:
        x = torch.randn(batch, 1, d, *shape, device=device)
        cases = {('backbone', op): forward_backward(
            DenseNet3D(num_slices=d, fusion=dict(type=op),
                       memory_efficient=args.memory_efficient).to(device).train(), x, thickness)
            for op in ops}
        tables['backbone'] = time_interleaved(cases, args.rounds, args.warmup, device)
        print(format_table(f'DenseNet3D backbone (median of {args.rounds} interleaved '
                           f'rounds, ratio to {BASE})', ['backbone'], ops,
                           tables['backbone'], args.timer))
    return {table: [dict(row=r, op=op, wall=t.wall, cpu=t.cpu) for (r, op), t in times.items()]
            for table, times in tables.items()}
