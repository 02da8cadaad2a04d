"""Seconds per training iteration and peak memory of the whole detector, for
every 3D context fusion operator at 3 and 7 slices.

    python tools/analysis/benchmark_train.py                      # CPU: 256 x 256
    python tools/analysis/benchmark_train.py --size 512 --amp     # CUDA, paper size
    python tools/analysis/benchmark_train.py --fusions NoFusionConv A3DConv --slices 7

One training iteration is ``model.train_step`` as the Runner calls it: data
preprocessor, forward, losses, backward, gradient clipping, SGD step, on one
image (the paper's 1 image per GPU) of ``--size`` x ``--size`` pixels with two
lesions. The model is the method's leaf config
(``configs/{method}/{method}_densenet121_{D}slice_deeplesion.py``) or, where
that is missing, the base model ``configs/_base_/models/mask_rcnn_densenet3d.py``
with the operator and slice count set; ``pretrained`` is switched off (random
weights time the same).

Each (operator, slices) runs in its own process, so its peak memory is its
own: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak resident set
size (``getrusage`` max RSS) and its growth over the RSS after the model and
optimiser were built (activations, gradients, optimiser state, allocator
caches). ``--rounds R`` repeats the whole set R times, one process per
(operator, slices) per round in rotated order, so load from other processes
hits all alike; the table reports the median iteration time over all rounds
and its ratio to NoFusionConv at the same slice count, both as wall-clock
time and as the process's CPU time (all threads; less sensitive to other
jobs on a shared machine), with the median 1-minute load average.

``--amp``: mixed precision (fp16 with dynamic loss scaling on CUDA, bf16
autocast on CPU), through the same optimiser wrappers as ``train.py --amp``.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: Operator class -> method folder under configs/.
METHODS: Dict[str, str] = {
    'NoFusionConv': 'no_fusion', 'I3DConv': 'i3d', 'P3DConv': 'p3d',
    'ACSConv': 'acs', 'TSMConv': 'tsm', 'AlignShiftConv': 'alignshift',
    'A3DConv': 'a3d'}
BASE_MODEL = osp.join(REPO, 'configs', '_base_', 'models',
                      'mask_rcnn_densenet3d.py')
PAPER_OPTIM = osp.join(REPO, 'configs', '_base_', 'schedules',
                       'schedule_20e.py')


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Training speed and memory per fusion operator')
    parser.add_argument('--fusions', nargs='+', default=list(METHODS),
                        choices=list(METHODS), help='operators to run')
    parser.add_argument('--slices', nargs='+', type=int, default=[3, 7],
                        help='slice counts D')
    parser.add_argument('--size', type=int, default=None,
                        help='image side in px (default 512 on CUDA, 256 on '
                        'CPU)')
    parser.add_argument('--iters', type=int, default=5,
                        help='timed iterations per process')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed iterations first')
    parser.add_argument('--rounds', type=int, default=1,
                        help='repeat the whole set, interleaved')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (CUDA fp16, CPU bf16)')
    parser.add_argument('--device', default=None,
                        help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--json-out', help='write every measurement here')
    parser.add_argument('--from-json', nargs='+', metavar='JSON',
                        help='no runs: summarise the measurements of earlier '
                        '--json-out files together (e.g. rounds run at '
                        'different times)')
    parser.add_argument('--worker', nargs=2, metavar=('FUSION', 'SLICES'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error('--iters and --rounds must be >= 1, --warmup >= 0')
    if any(d < 1 or d % 2 == 0 for d in args.slices):
        parser.error('--slices must be positive odd numbers')
    return args


def model_config(fusion: str, num_slices: int):
    """The method's leaf config, or the base model with fusion/slices set.

    Returns:
        (Config, path of the file it came from)
    """
    from mmengine.config import Config
    folder = METHODS[fusion]
    leaf = osp.join(REPO, 'configs', folder,
                    f'{folder}_densenet121_{num_slices}slice_deeplesion.py')
    if osp.isfile(leaf):
        cfg = Config.fromfile(leaf)
        source = leaf
    else:
        cfg = Config.fromfile(BASE_MODEL)
        cfg.merge_from_dict(Config.fromfile(PAPER_OPTIM).to_dict())
        cfg.model.backbone.fusion = dict(type=fusion)
        cfg.model.backbone.num_slices = num_slices
        source = BASE_MODEL
    cfg.model.backbone.pretrained = None
    return cfg, source


def make_batch(num_slices: int, size: int, seed: int = 0) -> Dict[str, Any]:
    """One windowed CT-like input ``(1, D, size, size)`` with two lesions."""
    import torch
    from mmengine.structures import InstanceData

    from a3d_det.structures.lesion_data_sample import LesionDataSample
    gen = torch.Generator().manual_seed(seed)
    img = torch.rand(1, num_slices, size, size, generator=gen) * 255 - 50
    boxes = torch.tensor([[0.20, 0.25, 0.32, 0.36], [0.55, 0.50, 0.70, 0.62]]) \
        * size
    masks = torch.zeros(2, size, size, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes.round().long().tolist()):
        masks[i, y1:y2, x1:x2] = True
    sample = LesionDataSample(metainfo=dict(
        img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
        scale_factor=(1.0, 1.0), flip=False, spacing=0.8, slice_interval=2.0,
        thickness=2.0, file_name='benchmark/000.png',
        ori_gt_bboxes=boxes.numpy()))
    sample.gt_instances = InstanceData(bboxes=boxes,
                                       labels=torch.zeros(2, dtype=torch.long),
                                       masks=masks)
    return dict(inputs=[img], data_samples=[sample])


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB


def _current_rss_mib() -> float:
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def run_worker(args: argparse.Namespace) -> Dict[str, Any]:
    """Build one model, run warm-up and timed iterations, measure memory."""
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import a3d_det.engine  # noqa: F401  (CPUAmpOptimWrapper)
    from a3d_det.registry import MODELS
    fusion, num_slices = args.worker[0], int(args.worker[1])
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    init_default_scope('a3d_det')
    torch.manual_seed(0)
    cfg, source = model_config(fusion, num_slices)
    model = MODELS.build(cfg.model).to(device)
    model.train()
    optim_cfg = cfg.optim_wrapper.to_dict() if hasattr(
        cfg.optim_wrapper, 'to_dict') else dict(cfg.optim_wrapper)
    if args.amp:
        optim_cfg['type'] = 'AmpOptimWrapper' if device.type == 'cuda' \
            else 'CPUAmpOptimWrapper'
        if device.type == 'cuda':
            optim_cfg.setdefault('loss_scale', 'dynamic')
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    batch = make_batch(num_slices, args.size)

    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    rss_built = _current_rss_mib()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times: List[float] = []
    cpu_times: List[float] = []
    losses: List[float] = []
    load_before = os.getloadavg()[0]
    for i in range(args.warmup + args.iters):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        log_vars = model.train_step(batch, optim_wrapper)
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        losses.append(float(log_vars['loss']))
    result = dict(fusion=fusion, num_slices=num_slices, size=args.size,
                  device=device.type, amp=args.amp, config=osp.relpath(
                      source, REPO), times=times, cpu_times=cpu_times,
                  losses=losses, threads=torch.get_num_threads(),
                  load=(load_before + os.getloadavg()[0]) / 2)
    if device.type == 'cuda':
        result['peak_mib'] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = _max_rss_mib()
        result['peak_mib'] = peak
        result['train_mib'] = peak - rss_built
    return result


def run_all(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """One subprocess per (operator, slices) per round, order rotated."""
    cases = [(f, d) for d in args.slices for f in args.fusions]
    results: List[Dict[str, Any]] = []
    for r in range(args.rounds):
        shift = r % len(cases)
        for fusion, slices in cases[shift:] + cases[:shift]:
            cmd = [sys.executable, osp.abspath(__file__), '--worker', fusion,
                   str(slices), '--size', str(args.size), '--iters',
                   str(args.iters), '--warmup', str(args.warmup),
                   '--device', args.device]
            if args.amp:
                cmd.append('--amp')
            if args.threads:
                cmd += ['--threads', str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                tail = out.stderr.strip().splitlines()[-1:] or ['?']
                print(f'{fusion} D={slices}: failed: {tail[0]}',
                      file=sys.stderr)
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res['round'] = r
            results.append(res)
            print(f'round {r + 1}/{args.rounds} {fusion:>14s} D={slices}: '
                  f'{statistics.median(res["times"]):.3f} s/iter, '
                  f'peak {res["peak_mib"]:.0f} MiB', file=sys.stderr)
    return results


def summarise(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Median s/iter and memory per (operator, slices); ratio to no fusion."""
    rows: Dict[tuple, Dict[str, Any]] = {}
    for res in results:
        key = (res['fusion'], res['num_slices'])
        row = rows.setdefault(key, dict(fusion=res['fusion'],
                                        num_slices=res['num_slices'],
                                        times=[], cpu=[], peaks=[], train=[],
                                        load=[]))
        row['times'] += res['times']
        row['cpu'] += res['cpu_times']
        row['load'].append(res['load'])
        row['peaks'].append(res['peak_mib'])
        if 'train_mib' in res:
            row['train'].append(res['train_mib'])
    table = []
    for row in rows.values():
        entry = dict(fusion=row['fusion'], num_slices=row['num_slices'],
                     s_per_iter=statistics.median(row['times']),
                     cpu_s_per_iter=statistics.median(row['cpu']),
                     n=len(row['times']),
                     load=statistics.median(row['load']),
                     peak_mib=statistics.median(row['peaks']))
        if row['train']:
            entry['train_mib'] = statistics.median(row['train'])
        table.append(entry)
    for entry in table:
        base = [e for e in table if e['fusion'] == 'NoFusionConv'
                and e['num_slices'] == entry['num_slices']]
        entry['ratio'] = entry['s_per_iter'] / base[0]['s_per_iter'] \
            if base else None
        entry['cpu_ratio'] = entry['cpu_s_per_iter'] / \
            base[0]['cpu_s_per_iter'] if base else None
    order = list(METHODS)
    table.sort(key=lambda e: (e['num_slices'], order.index(e['fusion'])))
    return table


def format_table(table: List[Dict[str, Any]], args: argparse.Namespace) -> str:
    cpu = args.device == 'cpu'
    mem_head = ('peak RSS (MiB) | training growth (MiB)' if cpu
                else 'peak allocated (MiB)')
    lines = [f'| operator | slices | s/iter (median) | vs no fusion | '
             f'CPU s/iter | vs no fusion | load | {mem_head} |',
             '| --- | --- | --- | --- | --- | --- | --- | '
             + ('--- | --- |' if cpu else '--- |')]

    def ratio(value):
        return f'{value:.2f}x' if value is not None else '-'
    for e in table:
        mem = (f"{e['peak_mib']:.0f} | {e.get('train_mib', float('nan')):.0f}"
               if cpu else f"{e['peak_mib']:.0f}")
        lines.append(f"| {e['fusion']} | {e['num_slices']} | "
                     f"{e['s_per_iter']:.2f} | {ratio(e['ratio'])} | "
                     f"{e['cpu_s_per_iter']:.2f} | {ratio(e['cpu_ratio'])} | "
                     f"{e['load']:.1f} | {mem} |")
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        sys.exit('error: --device cuda but CUDA is not available')
    if args.size is None:
        args.size = 512 if args.device.startswith('cuda') else 256
    if args.size < 32 or args.size % 32:
        sys.exit('error: --size must be a positive multiple of 32')
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    if args.from_json:
        results = []
        for path in args.from_json:
            if not osp.isfile(path):
                sys.exit(f'error: {path} not found')
            with open(path) as f:
                results += json.load(f)['results']
        settings = {(r['device'], r['size'], r['amp']) for r in results}
        if len(settings) != 1:
            sys.exit(f'error: the files mix settings (device, size, amp): '
                     f'{sorted(settings)}')
        args.device, args.size, args.amp = settings.pop()
    else:
        results = run_all(args)
    if not results:
        sys.exit('error: every run failed')
    table = summarise(results)
    amp = ('bf16 autocast' if args.device == 'cpu' else 'fp16 AMP') \
        if args.amp else 'fp32'
    timed = sorted({len(r['times']) for r in results})
    print(f'device {args.device}, {args.size}x{args.size}, batch 1, {amp}, '
          f'{len(results)} runs of {timed} timed iterations, '
          f'threads {results[0]["threads"]}')
    print(format_table(table, args))
    if args.json_out:
        with open(args.json_out, 'w') as f:
            json.dump(dict(args=vars(args), results=results, table=table), f,
                      indent=2)


if __name__ == '__main__':
    main()
