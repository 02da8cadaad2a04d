"""DeepLesion multi-slice loading, samples per second (one process).

Writes a temporary DeepLesion-format series (uint16 PNGs rendered by the
synthetic generator at ``--size`` px, slice interval ``--interval`` mm, the
NIH release's zlib level) and times, per sample (a key slice and its
neighbours resampled to 2 mm):

* ``baseline``: a straightforward loop that decodes a slice every time it is
  used (each interpolated neighbour decodes both of its slices);
* ``load_multislice``: the project's loader (each slice decoded once per
  sample), decoding in the calling thread or with 2 threads (the default);
* ``train pipeline``: loading, annotations, windowing, flip, shift/scale/rotate,
  resize to 512, pad, pack (the paper's training pipeline).

Each round runs ``--samples`` samples of every case, interleaved; reported are
the median samples per wall-clock second and per CPU second (all threads), and
the median ratio to the baseline::

    python tools/analysis/benchmark.py --task data --num-slices 7 --interval 0.8
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
import tempfile

import numpy as np

from a3d_det.datasets.deeplesion import (load_multislice, neighbour_offsets, read_png_hu,
                                         slice_path, write_png_hu)
from a3d_det.datasets.synthetic import SyntheticSeries
from a3d_det.registry import TRANSFORMS
from a3d_det.utils.errors import UserInputError
from a3d_det.utils.timing import median_ratio, time_interleaved

FOLDER = '000001_01_01'
TRAIN_PIPELINE = [
    ('LoadLesionAnnotations', {}), ('WindowCT', {}), ('RandomHorizontalFlip', {}),
    ('RandomShiftScaleRotate', {}), ('ResizeCT', dict(size=512)), ('PadCT', {}),
    ('PackLesionInputs', {})]


def write_series(image_dir: str, n: int, size: int, interval: float) -> None:
    """Slices 1..n of a synthetic series with three tubes and a lesion."""
    vol = SyntheticSeries(np.random.default_rng(0), size, size, size)
    for _ in range(3):
        vol.add_tube(n * interval / 2)
    vol.add_lesion(n * interval / 2)
    for i in range(1, n + 1):
        write_png_hu(slice_path(image_dir, FOLDER, i), vol.render(i * interval))


def baseline_load(image_dir: str, key: int, interval: float, num_slices: int) -> np.ndarray:
    """Decode-per-use loop: every interpolated neighbour reads both of its slices."""
    def read(i: int) -> np.ndarray:
        return read_png_hu(slice_path(image_dir, FOLDER, i))
    out = []
    for rel in neighbour_offsets(interval, num_slices, 2.0):
        lo = math.floor(rel)
        w = rel - lo
        out.append(read(key + lo) if abs(w) < 1e-6
                   else (1 - w) * read(key + lo) + w * read(key + lo + 1))
    return np.stack(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--num-slices', type=int, default=7)
    parser.add_argument('--interval', type=float, default=0.8, help='native slice interval, mm')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--samples', type=int, default=40, help='samples per case and round')
    parser.set_defaults(rounds=5)


def run(args: argparse.Namespace) -> dict:
    if args.num_slices < 1 or args.interval <= 0 or args.size < 32 or args.samples < 1:
        raise UserInputError('need --num-slices >= 1, --interval > 0, --size >= 32, '
                             '--samples >= 1')
    d, interval = args.num_slices, args.interval
    reach = int(math.ceil(2.0 * (d // 2) / interval)) + 1
    keys = list(range(reach + 1, reach + 1 + args.samples))
    pipeline = [TRANSFORMS.build(dict(type='LoadMultiSliceFromFile', num_slices=d))] + [
        TRANSFORMS.build(dict(type=t, **kw)) for t, kw in TRAIN_PIPELINE]
    with tempfile.TemporaryDirectory() as tmp:
        image_dir = osp.join(tmp, 'Images_png')
        write_series(image_dir, args.samples + 2 * reach + 1, args.size, interval)

        def name(k: int) -> str:
            return f'{FOLDER}/{k:03d}.png'

        np.testing.assert_allclose(load_multislice(image_dir, name(keys[0]), interval, d),
                                   baseline_load(image_dir, keys[0], interval, d), atol=1e-3)

        def train_sample(k: int) -> None:
            res = dict(image_dir=image_dir, file_name=name(k), slice_interval=interval,
                       spacing=0.7, gt_bboxes=np.array([[100, 120, 140, 150]], np.float32),
                       recists=np.array([[100, 135, 140, 135, 120, 120, 120, 150]], np.float32))
            for t in pipeline:
                res = t(res)

        per_sample = {
            'baseline (decode per use)': lambda k: baseline_load(image_dir, k, interval, d),
            'load_multislice, 1 thread': lambda k: load_multislice(
                image_dir, name(k), interval, d, threads=1),
            'load_multislice, 2 threads': lambda k: load_multislice(
                image_dir, name(k), interval, d, threads=2),
            'train pipeline': train_sample,
        }
        timings = time_interleaved(
            {case: (lambda fn=fn: [fn(k) for k in keys]) for case, fn in per_sample.items()},
            args.rounds, args.warmup)
    n = len(keys)
    print(f'{d} slices of {args.size}x{args.size} at {interval} mm -> 2 mm, {n} samples x '
          f'{args.rounds} interleaved rounds; median samples/s:')
    base = timings['baseline (decode per use)'].wall
    rows = []
    for case, t in timings.items():
        rows.append(dict(case=case, per_s=n / t.median(), per_cpu_s=n / t.median('cpu'),
                         vs_baseline=median_ratio(base, t.wall), wall=t.wall, cpu=t.cpu))
        print(f'  {case:28s} {rows[-1]["per_s"]:7.1f}/s wall '
              f'({rows[-1]["vs_baseline"]:.2f}x baseline), '
              f'{rows[-1]["per_cpu_s"]:6.1f} per CPU-second')
    return dict(samples=n, rows=rows)
