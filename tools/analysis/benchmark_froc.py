"""Benchmark: vectorised FROC vs a per-prediction Python loop, same results.

Synthetic DeepLesion-like test set (default 5,000 images, 0-3 lesions and
0-50 predictions each, a third of the predictions jittered around lesions,
scores rounded to 2 decimals so ties occur). Times ``sens_at_fp`` (the
vectorised core) and ``sens_at_fp_reference`` (DeepLesion's published loop),
reports medians and their ratio, and checks that the FROC curves and the
sensitivities are identical (bit for bit)::

    python tools/analysis/benchmark_froc.py --images 5000 --max-preds 50
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from a3d_det.evaluation.froc import froc_curve, sens_at_fp
from a3d_det.evaluation.froc_reference import (froc_curve_reference,
                                               sens_at_fp_reference)


def synthetic_detections(num_images: int, max_preds: int, seed: int = 0
                         ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random per-image predictions (N_i, 5) and lesions (M_i, 4), 512 px."""
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for _ in range(num_images):
        m = int(rng.integers(0, 4))
        xy = rng.uniform(0, 450, (m, 2))
        gt = np.hstack([xy, xy + rng.uniform(5, 60, (m, 2))])
        n = int(rng.integers(0, max_preds + 1))
        xy = rng.uniform(0, 450, (n, 2))
        box = np.hstack([xy, xy + rng.uniform(5, 60, (n, 2))])
        if m and n:
            near = n // 3
            box[:near] = gt[rng.integers(0, m, near)] + rng.normal(0, 4,
                                                                   (near, 4))
        scores = rng.random((n, 1)).round(2)
        preds.append(np.hstack([box, scores]))
        gts.append(gt)
    return preds, gts


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--max-preds', type=int, default=50)
    parser.add_argument('--repeats', type=int, default=7,
                        help='runs of the vectorised version')
    parser.add_argument('--loop-repeats', type=int, default=3,
                        help='runs of the loop reference')
    parser.add_argument('--criterion', choices=('iou', 'iobb'), default='iou')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.images < 1 or args.max_preds < 0 or args.repeats < 1 \
            or args.loop_repeats < 1:
        print('benchmark_froc: error: --images, --repeats and --loop-repeats '
              'must be >= 1, --max-preds >= 0', file=sys.stderr)
        return 1
    preds, gts = synthetic_detections(args.images, args.max_preds, args.seed)
    n_pred = sum(len(p) for p in preds)
    n_gt = sum(len(g) for g in gts)
    print(f'{args.images} images, {n_pred} predictions, {n_gt} lesions, '
          f'criterion {args.criterion}')
    t_vec, s_vec = _median_time(
        lambda: sens_at_fp(preds, gts, criterion=args.criterion), args.repeats)
    t_loop, s_loop = _median_time(
        lambda: sens_at_fp_reference(preds, gts, criterion=args.criterion),
        args.loop_repeats)
    c_vec = froc_curve(preds, gts, criterion=args.criterion)
    c_loop = froc_curve_reference(preds, gts, criterion=args.criterion)
    same = (np.array_equal(s_vec, s_loop) and np.array_equal(c_vec[0], c_loop[0])
            and np.array_equal(c_vec[1], c_loop[1]))
    print('sens@[0.5,1,2,4,8,16]:', np.round(s_vec, 4).tolist())
    print(f'loop reference: median {t_loop:.3f} s ({args.loop_repeats} runs)')
    print(f'vectorised:     median {t_vec:.4f} s ({args.repeats} runs)')
    print(f'speed-up: {t_loop / t_vec:.1f}x; identical results: {same}')
    return 0 if same else 2


if __name__ == '__main__':
    sys.exit(main())
