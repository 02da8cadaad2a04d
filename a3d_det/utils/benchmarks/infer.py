"""Inference latency per key slice of the paper's A3D detector.

Builds the A3D detector (DenseNet-121 3D + A3D fusion, 3D-to-2D FPN, Mask
R-CNN heads with the official test settings: 300 proposals, at most 50
detections, masks pasted into the original image) for each slice count,
randomly initialised (batch norm statistics set from the synthetic CT, see
:func:`calibrate_norms`), and times in interleaved rounds, per slice count,
``a3d_det.apis.inference_detector`` on a synthetic CT volume (soft tissue with
round lesions, slice interval 2.5 mm so the 2 mm neighbours are interpolated:
resampling, windowing, resize, padding, the network and the post-processing)
and the model's forward alone on the batch it made. Reports medians (and
min/max) of the wall time and the CPU time of the process per key slice, and
per step of the detector (backbone, neck, RPN, RoI heads) its multiply-adds
and CPU time. ``--config``/``--checkpoint`` time a trained model instead::

    python tools/analysis/benchmark.py --task infer --slices 3 7 --size 512 --rounds 3
    python tools/analysis/benchmark.py --task infer --slices 3 --rounds 1 --profile
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from mmengine.config import Config

from a3d_det.apis import inference_detector, init_detector
from a3d_det.utils.benchmarks import leaf_config
from a3d_det.utils.errors import UserInputError, require_file
from a3d_det.utils.timing import time_interleaved

SPACING, INTERVAL = 0.8, 2.5  # mm


def synthetic_volume(num: int, size: int, seed: int = 0) -> np.ndarray:
    """(num, size, size) HU: air, a body ellipse of soft tissue, round lesions."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    body = ((xx - 0.5) / 0.42) ** 2 + ((yy - 0.5) / 0.32) ** 2 < 1
    vol = np.full((num, size, size), -1000, np.float32)
    vol[:, body] = 40
    for _ in range(6):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.35, 0.65), rng.uniform(0.01, 0.05)
        vol[:, (xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2] = rng.uniform(-50, 150)
    vol += rng.normal(0, 15, vol.shape).astype(np.float32)
    return vol


def calibrate_norms(model: torch.nn.Module, vol: np.ndarray, key: int, num_slices: int) -> None:
    """Give a randomly initialised model the normalisation statistics of CT.

    Fresh batch norm layers hold running mean 0 and variance 1, so in eval
    mode they normalise nothing and a random 7-slice DenseNet's activations
    grow until the RPN's boxes degenerate. One train-mode pass of backbone and
    neck over the key slice's windowed neighbours (cumulative averages) sets
    them as training would; the timed runs are in eval mode.
    """
    from a3d_det.datasets import windowing
    half = num_slices // 2
    stack = windowing(vol[max(key - half, 0):key + half + 1])       # (D, H, W)
    x = torch.from_numpy(np.ascontiguousarray(stack))[None, None]  # (1, 1, D, H, W)
    for norm in model.modules():
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average
            norm.train()
    with torch.no_grad():
        model.extract_feat(x.to(next(model.parameters()).device))
    model.eval()


def stage_breakdown(model: torch.nn.Module, data: dict) -> dict[str, dict[str, float]]:
    """GMAC (``torch.utils.flop_counter``, multiply-adds) and CPU seconds of
    each step of ``LesionMaskRCNN.predict`` on one preprocessed batch."""
    from torch.utils.flop_counter import FlopCounterMode

    from a3d_det.models.detectors.lesion_mask_rcnn import _image_list
    out: dict[str, Any] = {}
    with torch.inference_mode():
        batch = model.data_preprocessor(data, False)
        x, samples = batch['inputs'], batch['data_samples']
        steps = [
            ('backbone', lambda: model.backbone(x)),
            ('neck', lambda: model.neck(out['backbone'][2])),
            ('rpn', lambda: model.rpn_head(_image_list(x, samples), out['neck'][2])[0]),
            ('roi_heads', lambda: model.roi_head.predict(
                out['neck'][2], out['rpn'][2], [s.metainfo for s in samples])),
        ]
        for name, step in steps:
            counter = FlopCounterMode(display=False)
            cpu = time.process_time()
            with counter:
                result = step()
            out[name] = (round(counter.get_total_flops() / 2e9, 1),
                         round(time.process_time() - cpu, 2), result)
    return {k: dict(gmac=v[0], cpu_s=v[1]) for k, v in out.items()}


def profile_backbone(model: torch.nn.Module, data: dict, rows: int = 8) -> str:
    """``torch.profiler`` table of one backbone forward, by self CPU time."""
    with torch.inference_mode():
        x = model.data_preprocessor(data, False)['inputs']
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model.backbone(x)
    return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows)


def prepare(num_slices: int, args: argparse.Namespace) -> dict[str, Any]:
    """The model, its volume and the two timed calls for one slice count."""
    cfg = Config.fromfile(args.config) if args.config else leaf_config('A3DConv', num_slices)[0]
    torch.manual_seed(0)
    model = init_detector(cfg, args.checkpoint, device=args.device)
    vol = synthetic_volume(num_slices + 8, args.size)
    key = vol.shape[0] // 2
    if args.checkpoint is None:
        calibrate_norms(model, vol, key, num_slices)
    state: dict[str, Any] = dict(model=model, detections=[])
    test_step = model.test_step

    def spy(data: dict) -> list:  # keeps the batch the pipeline made for the forward alone
        state['data'] = data
        return test_step(data)
    model.test_step = spy

    def pipeline() -> None:
        state['detections'].append(len(
            inference_detector(model, vol, SPACING, INTERVAL, [key])[0]['scores']))

    def forward() -> None:
        with torch.inference_mode():
            test_step(state['data'])
    state['cases'] = {(num_slices, 'pipeline'): pipeline, (num_slices, 'forward'): forward}
    return state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--slices', type=int, nargs='+', default=[3, 7])
    parser.add_argument('--size', type=int, default=512,
                        help='in-plane size of the synthetic CT (default 512)')
    parser.add_argument('--config', help='time this config instead of the paper A3D '
                        'detector (its own slice count)')
    parser.add_argument('--checkpoint', help='weights for --config')
    parser.add_argument('--profile', action='store_true', help='also print the operators '
                        'taking the most CPU time in the backbone (torch.profiler)')
    parser.set_defaults(rounds=5)


def run(args: argparse.Namespace) -> dict:
    if args.size < 32 or any(d < 1 or d % 2 == 0 for d in args.slices):
        raise UserInputError('need --size >= 32 and positive odd --slices')
    if args.warmup < 1:
        raise UserInputError('--warmup must be >= 1 (the forward alone reuses its batch)')
    if args.checkpoint:
        require_file(args.checkpoint, 'checkpoint')
    slice_counts = args.slices
    if args.config:
        require_file(args.config, 'config file')
        slice_counts = [int(Config.fromfile(args.config).model.backbone.num_slices)]
    states = {d: prepare(d, args) for d in slice_counts}
    timings = time_interleaved({k: fn for s in states.values() for k, fn in s['cases'].items()},
                               args.rounds, args.warmup, args.device)
    print(f'{"device":>6} {"D":>3} {"size":>5} {"threads":>7} {"median s":>9} {"min s":>7} '
          f'{"max s":>7} {"forward s":>9} {"CPU s":>7} {"dets":>5}')
    rows = []
    for d, state in states.items():
        total, forward = timings[(d, 'pipeline')], timings[(d, 'forward')]
        model = state['model']
        row = dict(num_slices=d, size=args.size, device=args.device,
                   threads=torch.get_num_threads(),
                   params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                   median_s=total.median(), min_s=min(total.wall), max_s=max(total.wall),
                   forward_median_s=forward.median(), cpu_median_s=total.median('cpu'),
                   detections=int(np.median(state['detections'])), rounds=args.rounds,
                   stages=stage_breakdown(model, state['data']))
        rows.append(row)
        print(f'{args.device:>6} {d:>3} {args.size:>5} {row["threads"]:>7} '
              f'{row["median_s"]:>9.3f} {row["min_s"]:>7.3f} {row["max_s"]:>7.3f} '
              f'{row["forward_median_s"]:>9.3f} {row["cpu_median_s"]:>7.3f} '
              f'{row["detections"]:>5}')
        print('        per step (GMAC, CPU s): ' + ', '.join(
            f'{k} {v["gmac"]} {v["cpu_s"]}' for k, v in row['stages'].items()))
        if args.profile:
            print(profile_backbone(model, state['data']))
    return dict(rows=rows)
