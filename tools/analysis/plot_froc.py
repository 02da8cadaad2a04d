"""Plot the FROC curves of one or more dumped runs on one log-x figure.

Example::

    python tools/analysis/plot_froc.py work_dirs/a3d_7/froc.json \
        work_dirs/acs_7/froc.json --labels A3D ACS --out froc.png
"""
from __future__ import annotations

import argparse
import os.path as osp

from a3d_det.evaluation import (DEFAULT_THR, FP_LEVELS, FROCDumpError,
                                froc_curve, froc_inputs, load_froc_dump)
from a3d_det.utils.cli import run_cli
from a3d_det.utils.errors import UserInputError
from a3d_det.visualization.froc_curve import plot_froc_curves


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='FROC curves of dumped runs (DeepLesionFROCMetric '
                    'dump_file) on one plot.')
    parser.add_argument('dumps', nargs='+', help='JSON dumps')
    parser.add_argument('--out', required=True,
                        help='output image (.png, .pdf, .svg)')
    parser.add_argument('--labels', nargs='+', default=None,
                        help='one label per dump (default: file names)')
    parser.add_argument('--iou-thr', type=float, default=None,
                        help='overlap threshold (default 0.5 iou, 0.3 iobb)')
    parser.add_argument('--criterion', choices=sorted(DEFAULT_THR),
                        default='iou')
    parser.add_argument('--fp-levels', type=float, nargs='+',
                        default=list(FP_LEVELS), help='marked FP levels')
    parser.add_argument('--title', default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    labels = args.labels or [osp.splitext(osp.basename(d))[0]
                             for d in args.dumps]
    if len(labels) != len(args.dumps):
        raise UserInputError(f'{len(labels)} labels for {len(args.dumps)} dumps')
    if len(set(labels)) != len(labels):
        raise UserInputError('labels must be distinct (use --labels)')
    curves = {}
    try:
        for label, path in zip(labels, args.dumps):
            images = load_froc_dump(path)
            curves[label] = froc_curve(*froc_inputs(images), args.iou_thr,
                                       args.criterion)
        plot_froc_curves(curves, args.out, args.fp_levels, args.title)
    except (FROCDumpError, ValueError) as e:
        raise UserInputError(str(e)) from None
    except OSError as e:
        raise UserInputError(f'cannot write {args.out}: {e.strerror}') from None
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    run_cli(main)
