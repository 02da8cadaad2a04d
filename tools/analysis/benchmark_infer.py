"""Benchmark: inference latency per key slice (the paper's detector).

Builds the A3D detector of the paper (DenseNet-121 3D + A3D fusion, 3D-to-2D
FPN, Mask R-CNN heads with the official test settings: 300 proposals, at most
50 detections, masks pasted into the original image) for each slice count,
randomly initialised (batch norm statistics set from the synthetic CT, see
``calibrate_norms``), and times ``a3d_det.apis.inference_detector`` on a
synthetic CT volume (soft tissue with round lesions, slice interval 2.5 mm so
the 2 mm neighbours are interpolated): neighbour resampling, windowing,
resize, padding, the network and the post-processing, per key slice. Reports
the median wall time over the repeats (and min/max), the median of the model
forward alone, the median CPU time of the process per key slice (all
threads; on a machine shared with other jobs it shows the work done, which
wall time does not), and per step of the detector (backbone, neck, RPN, RoI
heads) its multiply-adds and CPU time::

    python tools/analysis/benchmark_infer.py --slices 3 7 --size 512 --repeats 3
    python tools/analysis/benchmark_infer.py --slices 3 --repeats 1 --profile

A trained checkpoint gives the same latency up to the number of detections
kept (at most 50 either way); ``--config``/``--checkpoint`` time a real one.
The goal of issue 6: <= 2 s per key slice for 3 slices on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Optional

import numpy as np
import torch
from mmengine.config import Config

from a3d_det.apis import inference_detector, init_detector

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def paper_config(num_slices: int) -> Config:
    """The A3D detector at its official settings, D slices, no pretrained file."""
    leaf = osp.join(REPO, 'configs', 'a3d', f'a3d_densenet121_{num_slices}slice_deeplesion.py')
    if osp.isfile(leaf):
        cfg = Config.fromfile(leaf)
    else:  # the leaf is _base_ + these keys
        cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models',
                                       'mask_rcnn_densenet3d.py'))
        cfg.merge_from_dict(Config.fromfile(osp.join(
            REPO, 'configs', '_base_', 'datasets', 'deeplesion.py')).to_dict())
        cfg.default_scope = 'a3d_det'
        cfg.model.backbone.fusion = dict(type='A3DConv')
    cfg.model.backbone.num_slices = num_slices
    cfg.model.backbone.pretrained = None
    cfg.test_dataloader.dataset.num_slices = num_slices
    return cfg


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
    stack = windowing(vol[max(key - half, 0):key + half + 1])     # (D, H, W)
    x = torch.from_numpy(np.ascontiguousarray(stack))[None, None]  # (1, 1, D, H, W)
    x = x.to(next(model.parameters()).device)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
        norm.train()
    with torch.no_grad():
        model.extract_feat(x)
    model.eval()


def stage_breakdown(model: torch.nn.Module, data: dict) -> dict:
    """GMAC (``torch.utils.flop_counter``, multiply-adds) and CPU seconds of
    each step of ``LesionMaskRCNN.predict`` on one preprocessed batch."""
    from torch.utils.flop_counter import FlopCounterMode

    from a3d_det.models.detectors.lesion_mask_rcnn import _image_list
    out = {}
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
            c0 = time.process_time()
            with counter:
                result = step()
            out[name] = (round(counter.get_total_flops() / 2e9, 1),
                         round(time.process_time() - c0, 2), result)
    return {k: dict(gmac=v[0], cpu_s=v[1]) for k, v in out.items()}


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def profile_backbone(model: torch.nn.Module, data: dict, rows: int = 8) -> str:
    """``torch.profiler`` table of one backbone forward, by self CPU time."""
    with torch.inference_mode():
        x = model.data_preprocessor(data, False)['inputs']
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model.backbone(x)
    return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows)


def bench(num_slices: int, size: int, repeats: int, device: str,
          config: Optional[str], checkpoint: Optional[str], profile: bool = False) -> dict:
    cfg = Config.fromfile(config) if config else paper_config(num_slices)
    torch.manual_seed(0)
    model = init_detector(cfg, checkpoint, device=device)
    vol = synthetic_volume(num_slices + 8, size)
    key = vol.shape[0] // 2
    spacing, interval = 0.8, 2.5
    if checkpoint is None:
        calibrate_norms(model, vol, key, num_slices)

    # model forward alone: the batch the pipeline makes for the key slice
    captured = {}
    original = model.test_step

    def spy(data):
        captured['data'] = data
        return original(data)
    model.test_step = spy

    totals, cpu, forwards, dets = [], [], [], []
    for i in range(repeats + 1):  # the first run warms up
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        out = inference_detector(model, vol, spacing, interval, [key])
        _sync(device)
        t1, c1 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            original(captured['data'])
        _sync(device)
        t2 = time.perf_counter()
        if i:
            totals.append(t1 - t0)
            cpu.append(c1 - c0)
            forwards.append(t2 - t1)
            dets.append(len(out[0]['scores']))
    n_params = sum(p.numel() for p in model.parameters())
    stages = stage_breakdown(model, captured['data'])
    if profile:
        print(profile_backbone(model, captured['data']), flush=True)
    return dict(stages=stages,num_slices=num_slices, size=size, device=device,
                threads=torch.get_num_threads(), params_m=round(n_params / 1e6, 2),
                median_s=round(statistics.median(totals), 3),
                min_s=round(min(totals), 3), max_s=round(max(totals), 3),
                forward_median_s=round(statistics.median(forwards), 3),
                cpu_median_s=round(statistics.median(cpu), 3),
                detections=int(statistics.median(dets)), repeats=repeats)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--slices', type=int, nargs='+', default=[3, 7])
    parser.add_argument('--size', type=int, default=512,
                        help='in-plane size of the synthetic CT (default 512)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', nargs='+', default=None,
                        help='devices to time (default: cpu, and cuda when present)')
    parser.add_argument('--config', help='time this config instead of the paper A3D '
                        'detector (its own slice count)')
    parser.add_argument('--checkpoint', help='weights for --config')
    parser.add_argument('--json-out', help='write the rows as JSON')
    parser.add_argument('--profile', action='store_true',
                        help='also print the operators taking the most CPU time '
                        'in the backbone (torch.profiler)')
    args = parser.parse_args(argv)
    devices = args.device or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    slice_counts = [None] if args.config else args.slices

    rows = []
    if hasattr(os, 'getloadavg'):
        print(f'load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs')
    print(f'{"device":>6} {"D":>3} {"size":>5} {"threads":>7} {"median s":>9} '
          f'{"min s":>7} {"max s":>7} {"forward s":>9} {"CPU s":>7} {"dets":>5}')
    for device in devices:
        for d in slice_counts:
            if d is None:
                d = int(Config.fromfile(args.config).model.backbone.num_slices)
            row = bench(d, args.size, args.repeats, device, args.config, args.checkpoint,
                        args.profile)
            rows.append(row)
            print(f'{device:>6} {d:>3} {args.size:>5} {row["threads"]:>7} '
                  f'{row["median_s"]:>9.3f} {row["min_s"]:>7.3f} {row["max_s"]:>7.3f} '
                  f'{row["forward_median_s"]:>9.3f} {row["cpu_median_s"]:>7.3f} '
                  f'{row["detections"]:>5}', flush=True)
            print('        per step (GMAC, CPU s): ' + ', '.join(
                f'{k} {v["gmac"]} {v["cpu_s"]}' for k, v in row['stages'].items()), flush=True)
    if hasattr(os, 'getloadavg'):
        print(f'load average after: {os.getloadavg()[0]:.2f}')
    if args.json_out:
        with open(args.json_out, 'w') as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
