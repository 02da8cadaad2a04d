"""Seconds per training iteration and peak memory of the whole detector, per fusion operator.

One training iteration is ``model.train_step`` as the Runner calls it: data
preprocessor, forward, losses, backward, gradient clipping, SGD step, on one
image (the paper's 1 image per GPU) of ``--size`` x ``--size`` pixels with two
lesions, the model of the method's DeepLesion leaf config
(``configs/{method}/{method}_densenet121_{D}slice_deeplesion.py``) with random
weights.

Each (operator, slices) runs in a fresh process, so its peak memory is its
own: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak resident set
size and its growth over the size after the model and optimiser were built
(activations, gradients, optimiser state, allocator caches). ``--rounds R``
runs the whole set R times, in rotated order; the table has the median
iteration time over all rounds (wall clock and CPU time of the process) and
its ratio to NoFusionConv at the same slice count. ``--amp``: fp16 with
dynamic loss scaling on CUDA, bf16 autocast on CPU, as ``train.py --amp``::

    python tools/analysis/benchmark.py --task train                  # CPU: 256 x 256
    python tools/analysis/benchmark.py --task train --size 512 --amp
    python tools/analysis/benchmark.py --task train --from-json r1.json r2.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os.path as osp
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from a3d_det.utils.benchmarks import METHODS, leaf_config
from a3d_det.utils.errors import UserInputError, require_file
from a3d_det.utils.timing import (current_rss_mib, peak_memory_mib, reset_peak_memory, rotated,
                                  time_interleaved)


def make_batch(num_slices: int, size: int, seed: int = 0) -> dict[str, Any]:
    """One windowed CT-like input ``(1, D, size, size)`` with two lesions."""
    import torch
    from mmengine.structures import InstanceData

    from a3d_det.structures.lesion_data_sample import LesionDataSample
    gen = torch.Generator().manual_seed(seed)
    img = torch.rand(1, num_slices, size, size, generator=gen) * 255 - 50
    boxes = torch.tensor([[0.20, 0.25, 0.32, 0.36], [0.55, 0.50, 0.70, 0.62]]) * size
    masks = torch.zeros(2, size, size, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes.round().long().tolist()):
        masks[i, y1:y2, x1:x2] = True
    sample = LesionDataSample(metainfo=dict(
        img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
        scale_factor=(1.0, 1.0), flip=False, spacing=0.8, slice_interval=2.0, thickness=2.0,
        file_name='benchmark/000.png', ori_gt_bboxes=boxes.numpy()))
    sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.zeros(2, dtype=torch.long),
                                       masks=masks)
    return dict(inputs=[img], data_samples=[sample])


def measure(fusion: str, num_slices: int, settings: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: build one model, time ``iters`` train steps after
    ``warmup`` untimed ones, and measure memory."""
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import a3d_det.engine  # noqa: F401  (CPUAmpOptimWrapper)
    from a3d_det.registry import MODELS
    if settings['threads']:
        torch.set_num_threads(settings['threads'])
    device = torch.device(settings['device'])
    init_default_scope('a3d_det')
    torch.manual_seed(0)
    cfg, path = leaf_config(fusion, num_slices)
    model = MODELS.build(cfg.model).to(device).train()
    optim_cfg = cfg.optim_wrapper.to_dict()
    if settings['amp']:
        optim_cfg['type'] = 'AmpOptimWrapper' if device.type == 'cuda' else 'CPUAmpOptimWrapper'
        if device.type == 'cuda':
            optim_cfg.setdefault('loss_scale', 'dynamic')
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    batch = make_batch(num_slices, settings['size'])
    rss_built = current_rss_mib()
    reset_peak_memory(device)
    losses: list[float] = []
    step = {'iteration': lambda: losses.append(float(torch.as_tensor(
        model.train_step(batch, optim_wrapper)['loss']).detach()))}
    timings = time_interleaved(step, settings['iters'], settings['warmup'], device)['iteration']
    result = dict(fusion=fusion, num_slices=num_slices, config=osp.basename(path),
                  times=timings.wall, cpu_times=timings.cpu, losses=losses,
                  threads=torch.get_num_threads(), peak_mib=peak_memory_mib(device),
                  **{k: settings[k] for k in ('size', 'device', 'amp')})
    if device.type == 'cpu':
        result['train_mib'] = result['peak_mib'] - rss_built
    return result


def run_all(args: argparse.Namespace, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One fresh process per (operator, slices) per round, order rotated."""
    cases = [(f, d) for d in args.slices for f in args.fusions]
    spawn = multiprocessing.get_context('spawn')
    results = []
    for r in range(args.rounds):
        for fusion, slices in rotated(cases, r):
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                try:
                    res = pool.submit(measure, fusion, slices, settings).result()
                except Exception as err:  # one failed case does not lose the others
                    print(f'{fusion} D={slices}: failed: {type(err).__name__}: {err}',
                          file=sys.stderr)
                    continue
            results.append(dict(res, round=r))
            print(f'round {r + 1}/{args.rounds} {fusion:>14s} D={slices}: '
                  f'{statistics.median(res["times"]):.3f} s/iter, '
                  f'peak {res["peak_mib"]:.0f} MiB', file=sys.stderr)
    return results


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median s/iter and memory per (operator, slices); ratios to no fusion."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for res in results:
        groups.setdefault((res['fusion'], res['num_slices']), []).append(res)
    table = []
    for (fusion, d), runs in groups.items():
        entry = dict(fusion=fusion, num_slices=d,
                     s_per_iter=statistics.median(t for r in runs for t in r['times']),
                     cpu_s_per_iter=statistics.median(t for r in runs for t in r['cpu_times']),
                     n=sum(len(r['times']) for r in runs),
                     peak_mib=statistics.median(r['peak_mib'] for r in runs))
        if 'train_mib' in runs[0]:
            entry['train_mib'] = statistics.median(r['train_mib'] for r in runs)
        table.append(entry)
    for entry in table:
        base = [e for e in table if e['fusion'] == 'NoFusionConv'
                and e['num_slices'] == entry['num_slices']]
        for key, ratio in (('s_per_iter', 'ratio'), ('cpu_s_per_iter', 'cpu_ratio')):
            entry[ratio] = entry[key] / base[0][key] if base else None
    order = list(METHODS)
    table.sort(key=lambda e: (e['num_slices'], order.index(e['fusion'])))
    return table


def format_table(table: list[dict[str, Any]], cpu: bool) -> str:
    mem = 'peak RSS (MiB) | training growth (MiB)' if cpu else 'peak allocated (MiB)'
    lines = [f'| operator | slices | s/iter (median) | vs no fusion | CPU s/iter | '
             f'vs no fusion | {mem} |', '|---' * (8 if cpu else 7) + '|']

    def ratio(value: float | None) -> str:
        return f'{value:.2f}x' if value is not None else '-'
    for e in table:
        memory = f"{e['peak_mib']:.0f}" + (f" | {e['train_mib']:.0f}" if cpu else '')
        lines.append(f"| {e['fusion']} | {e['num_slices']} | {e['s_per_iter']:.2f} | "
                     f"{ratio(e['ratio'])} | {e['cpu_s_per_iter']:.2f} | "
                     f"{ratio(e['cpu_ratio'])} | {memory} |")
    return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--fusions', nargs='+', default=list(METHODS), choices=list(METHODS),
                        help='operators to run')
    parser.add_argument('--slices', nargs='+', type=int, default=[3, 7], help='slice counts D')
    parser.add_argument('--size', type=int, default=None,
                        help='image side in px (default 512 on CUDA, 256 on CPU)')
    parser.add_argument('--iters', type=int, default=5, help='timed iterations per process')
    parser.add_argument('--amp', action='store_true', help='mixed precision (CUDA fp16, CPU bf16)')
    parser.add_argument('--from-json', nargs='+', metavar='JSON',
                        help='no runs: summarise the measurements of earlier --json-out '
                        'files together')
    parser.set_defaults(rounds=1, warmup=2)


def _read_results(paths: list[str]) -> list[dict[str, Any]]:
    results = []
    for path in paths:
        try:
            with open(require_file(path, '--from-json file')) as f:
                results += json.load(f)['results']
        except (ValueError, KeyError, TypeError) as err:
            raise UserInputError(f'{path}: not a --json-out file of this task ({err})') from None
    settings = {(r['device'], r['size'], r['amp']) for r in results}
    if len(settings) != 1:
        raise UserInputError(f'the files mix settings (device, size, amp): {sorted(settings)}')
    return results


def run(args: argparse.Namespace) -> dict:
    if args.iters < 1 or any(d < 1 or d % 2 == 0 for d in args.slices):
        raise UserInputError('need --iters >= 1 and positive odd --slices')
    if args.from_json:
        results = _read_results(args.from_json)
    else:
        size = args.size or (512 if args.device.startswith('cuda') else 256)
        if size < 32 or size % 32:
            raise UserInputError('--size must be a positive multiple of 32')
        settings = dict(device=args.device, size=size, amp=args.amp, threads=args.threads,
                        iters=args.iters, warmup=args.warmup)
        results = run_all(args, settings)
    if not results:
        raise SystemExit('error: every run failed')
    table = summarise(results)
    first = results[0]
    amp = ('bf16 autocast' if first['device'] == 'cpu' else 'fp16 AMP') if first['amp'] \
        else 'fp32'
    print(f"device {first['device']}, {first['size']}x{first['size']}, batch 1, {amp}, "
          f"{len(results)} runs of {sorted({len(r['times']) for r in results})} timed "
          f"iterations, threads {first['threads']}")
    print(format_table(table, first['device'] == 'cpu'))
    return dict(results=results, table=table)
