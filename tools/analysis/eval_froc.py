"""Evaluate a FROC dump offline and print the sensitivity table.

The dump is written by ``DeepLesionFROCMetric(dump_file=...)`` (schema in
``a3d_det/evaluation/froc_dump.py``). Examples::

    python tools/analysis/eval_froc.py work_dirs/a3d/froc_dump.json
    python tools/analysis/eval_froc.py DUMP --criterion iobb      # IoBB >= 0.3
    python tools/analysis/eval_froc.py DUMP --by size --by type --json-out m.json
"""
from __future__ import annotations

import argparse

from a3d_det.evaluation import (BREAKDOWNS, DEFAULT_THR, FP_LEVELS,
                                FROCDumpError, evaluate_froc, load_froc_dump)
from a3d_det.utils.cli import run_cli, write_json
from a3d_det.utils.errors import UserInputError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='DeepLesion FROC of a dumped run (sensitivity at FPs per '
                    'image).')
    parser.add_argument('dump', help='JSON dump of DeepLesionFROCMetric')
    parser.add_argument('--iou-thr', type=float, default=None,
                        help='overlap threshold (default 0.5 for iou, 0.3 for '
                             'iobb)')
    parser.add_argument('--criterion', choices=sorted(DEFAULT_THR),
                        default='iou',
                        help='iou (DeepLesion protocol) or iobb (intersection '
                             'over the predicted box)')
    parser.add_argument('--by', action='append', choices=BREAKDOWNS,
                        default=[], help='add a breakdown (repeatable)')
    parser.add_argument('--fp-levels', type=float, nargs='+',
                        default=list(FP_LEVELS), help='FPs per image reported')
    parser.add_argument('--json-out', default=None,
                        help='also write the metrics (fractions) to this JSON')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        images = load_froc_dump(args.dump)
        report = evaluate_froc(images, args.fp_levels, args.iou_thr,
                               args.criterion, args.by)
    except (FROCDumpError, ValueError) as e:
        raise UserInputError(str(e)) from None
    thr = args.iou_thr if args.iou_thr is not None else \
        DEFAULT_THR[args.criterion]
    print(f'{args.dump}: {len(images)} images, '
          f'{args.criterion} >= {thr:g}, sensitivity (%) at FPs per image')
    print(report.table())
    if args.json_out:
        try:
            write_json(args.json_out, report.metrics())
        except OSError as e:
            raise UserInputError(f'cannot write {args.json_out}: {e.strerror}') from None
    return 0


if __name__ == '__main__':
    run_cli(main)
