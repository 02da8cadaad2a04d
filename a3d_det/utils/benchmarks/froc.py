"""Vectorised FROC against a per-prediction Python loop, same results.

A synthetic DeepLesion-like test set (default 5,000 images, 0-3 lesions and
0-50 predictions each, a third of the predictions jittered around lesions,
scores rounded to 2 decimals so ties occur). Times ``sens_at_fp`` (the
vectorised core) and ``sens_at_fp_reference`` (DeepLesion's published loop) in
interleaved rounds, reports their medians and the median speed-up, and checks
that the FROC curves and the sensitivities are identical (bit for bit; exit
status 1 where they are not)::

    python tools/analysis/benchmark.py --task froc --images 5000 --max-preds 50
"""
from __future__ import annotations

import argparse

import numpy as np

from a3d_det.evaluation.froc import froc_curve, sens_at_fp
from a3d_det.evaluation.froc_reference import froc_curve_reference, sens_at_fp_reference
from a3d_det.utils.errors import UserInputError
from a3d_det.utils.timing import median_ratio, time_interleaved


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
            box[:near] = gt[rng.integers(0, m, near)] + rng.normal(0, 4, (near, 4))
        scores = rng.random((n, 1)).round(2)
        preds.append(np.hstack([box, scores]))
        gts.append(gt)
    return preds, gts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--max-preds', type=int, default=50)
    parser.add_argument('--criterion', choices=('iou', 'iobb'), default='iou')
    parser.add_argument('--seed', type=int, default=0)
    parser.set_defaults(rounds=3, warmup=0)


def run(args: argparse.Namespace) -> dict:
    if args.images < 1 or args.max_preds < 0:
        raise UserInputError('--images must be >= 1, --max-preds >= 0')
    preds, gts = synthetic_detections(args.images, args.max_preds, args.seed)
    print(f'{args.images} images, {sum(map(len, preds))} predictions, '
          f'{sum(map(len, gts))} lesions, criterion {args.criterion}')
    out = {}
    cases = {
        'loop reference': lambda: out.update(
            loop=sens_at_fp_reference(preds, gts, criterion=args.criterion)),
        'vectorised': lambda: out.update(vec=sens_at_fp(preds, gts, criterion=args.criterion)),
    }
    timings = time_interleaved(cases, args.rounds, args.warmup)
    curve = froc_curve(preds, gts, criterion=args.criterion)
    curve_loop = froc_curve_reference(preds, gts, criterion=args.criterion)
    same = bool(np.array_equal(out['vec'], out['loop']) and np.array_equal(curve[0], curve_loop[0])
                and np.array_equal(curve[1], curve_loop[1]))
    speedup = median_ratio(timings['loop reference'].wall, timings['vectorised'].wall)
    print('sens@[0.5,1,2,4,8,16]:', np.round(out['vec'], 4).tolist())
    for name, t in timings.items():
        print(f'{name + ":":16s} median {t.median():.4f} s ({args.rounds} interleaved rounds)')
    print(f'speed-up: {speedup:.1f}x; identical results: {same}')
    if not same:
        raise SystemExit('error: the vectorised FROC differs from the loop reference')
    return dict(speedup=speedup, identical=same,
                **{name: dict(wall=t.wall, cpu=t.cpu) for name, t in timings.items()})
