"""Benchmark DeepLesion multi-slice loading (samples/s, one process).

    python tools/analysis/benchmark_data.py [--num-slices 7 --interval 0.8 --size 512]

Writes a temporary DeepLesion-format series (uint16 PNGs rendered by the
synthetic generator at ``--size`` px, slice interval ``--interval`` mm) and
times, per sample (a key slice and its neighbours resampled to 2 mm):

* ``baseline``: a straightforward loop that decodes a slice every time it is
  used (each interpolated neighbour decodes both of its slices);
* ``load_multislice``: the project's loader (each slice decoded once per
  sample), decoding in the calling thread or with 2 threads (the default);
* ``train pipeline``: loading, annotations, windowing, flip, shift/scale/rotate,
  resize to 512, pad, pack (the paper's training pipeline).

Reports the median over ``--repeats`` rounds of ``--samples`` samples, per
wall-clock second and per CPU second (summed over threads; less sensitive to
other processes on a shared machine), and the load average.
"""
import argparse
import math
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

from a3d_det.datasets.deeplesion import (HU_OFFSET, load_multislice, neighbour_offsets,
                                         slice_path)
from a3d_det.datasets.synthetic import SyntheticSeries
from a3d_det.registry import TRANSFORMS

FOLDER = '000001_01_01'


def write_series(image_dir: str, n: int, size: int, interval: float) -> None:
    rng = np.random.default_rng(0)
    vol = SyntheticSeries(rng, size, size, size)
    for _ in range(3):
        vol.add_tube(n * interval / 2)
    vol.add_lesion(n * interval / 2)
    for i in range(1, n + 1):
        png = np.clip(np.rint(vol.render(i * interval)) + HU_OFFSET, 0, 65535).astype(np.uint16)
        path = slice_path(image_dir, FOLDER, i)
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, png)  # default zlib level, like the NIH release


def baseline_load(image_dir: str, key: int, interval: float, num_slices: int) -> np.ndarray:
    """Decode-per-use loop: every interpolated neighbour reads both of its slices."""
    def read(i):
        return cv2.imread(slice_path(image_dir, FOLDER, i), cv2.IMREAD_UNCHANGED).astype(
            np.float32) - HU_OFFSET
    out = []
    for rel in neighbour_offsets(interval, num_slices, 2.0):
        lo = math.floor(rel)
        w = rel - lo
        if abs(w) < 1e-6:
            out.append(read(key + lo))
        else:
            out.append((1 - w) * read(key + lo) + w * read(key + lo + 1))
    return np.stack(out)


def rate(fn, keys, repeats: int) -> tuple[float, float]:
    """Median samples per wall-clock second and per CPU second (all threads)."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for k in keys:
            fn(k)
        wall.append(len(keys) / (time.perf_counter() - start))
        cpu.append(len(keys) / (time.process_time() - start_cpu))
    return statistics.median(wall), statistics.median(cpu)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--num-slices', type=int, default=7)
    p.add_argument('--interval', type=float, default=0.8, help='native slice interval, mm')
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--samples', type=int, default=40, help='samples per round')
    p.add_argument('--repeats', type=int, default=5)
    args = p.parse_args(argv)
    reach = int(math.ceil(2.0 * (args.num_slices // 2) / args.interval)) + 1
    n = args.samples + 2 * reach + 1
    with tempfile.TemporaryDirectory() as tmp:
        image_dir = osp.join(tmp, 'Images_png')
        write_series(image_dir, n, args.size, args.interval)
        keys = list(range(reach + 1, reach + 1 + args.samples))
        ref = load_multislice(image_dir, f'{FOLDER}/{keys[0]:03d}.png', args.interval,
                              args.num_slices)
        np.testing.assert_allclose(ref, baseline_load(image_dir, keys[0], args.interval,
                                                      args.num_slices), atol=1e-3)
        pipeline = [TRANSFORMS.build(dict(type=t, **kw)) for t, kw in [
            ('LoadMultiSliceFromFile', dict(num_slices=args.num_slices)),
            ('LoadLesionAnnotations', {}), ('WindowCT', {}), ('RandomHorizontalFlip', {}),
            ('RandomShiftScaleRotate', {}), ('ResizeCT', dict(size=512)), ('PadCT', {}),
            ('PackLesionInputs', {})]]
        box = np.array([[100, 120, 140, 150]], np.float32)

        def train_sample(k):
            res = dict(image_dir=image_dir, file_name=f'{FOLDER}/{k:03d}.png',
                       slice_interval=args.interval, spacing=0.7, gt_bboxes=box,
                       recists=np.array([[100, 135, 140, 135, 120, 120, 120, 150]], np.float32))
            for t in pipeline:
                res = t(res)
            return res

        results = {
            'baseline (decode per use)': rate(
                lambda k: baseline_load(image_dir, k, args.interval, args.num_slices),
                keys, args.repeats),
            'load_multislice, 1 thread': rate(
                lambda k: load_multislice(image_dir, f'{FOLDER}/{k:03d}.png', args.interval,
                                          args.num_slices, threads=1), keys, args.repeats),
            'load_multislice, 2 threads': rate(
                lambda k: load_multislice(image_dir, f'{FOLDER}/{k:03d}.png', args.interval,
                                          args.num_slices, threads=2), keys, args.repeats),
            'train pipeline': rate(train_sample, keys, args.repeats),
        }
    print(f'{args.num_slices} slices of {args.size}x{args.size} at {args.interval} mm -> 2 mm, '
          f'{args.samples} samples x {args.repeats} rounds, {os.cpu_count()} CPUs, '
          f'load average {os.getloadavg()[0]:.1f}; median samples/s:')
    base = results['baseline (decode per use)'][0]
    for name, (wall, cpu) in results.items():
        print(f'  {name:28s} {wall:7.1f}/s wall ({wall / base:.2f}x baseline), '
              f'{cpu:6.1f} per CPU-second')
    return 0


if __name__ == '__main__':
    sys.exit(main())
