"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``.

Runs the config's test loop (FROC on DeepLesion's test split) and prints the
table. ``--json-out`` writes the summary (``sens@0.5`` ... ``sens@16``,
``avg[0.5-4]``, fractions), ``--out`` the FROC metric's prediction dump
(read by ``tools/analysis/eval_froc.py``), ``--show-dir`` saves overlays.
Distributed: ``tools/dist_test.sh CONFIG CHECKPOINT NPROC [options]``.
"""
import argparse

from mmengine.dist import is_main_process

from a3d_det.engine import enable_masks_if_needed, setup_distributed
from a3d_det.evaluation.froc_keys import froc_summary
from a3d_det.utils.cli import add_common_args, run_cli, write_json
from a3d_det.utils.runner_config import (add_visualization_hook, build_runner, load_config,
                                         set_froc_dump_file, set_load_from, set_work_dir)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a lesion detector')
    parser.add_argument('config', help='config file (.py)')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--json-out', metavar='FILE',
                        help='write the FROC summary as JSON')
    parser.add_argument('--out', metavar='PRED_DUMP',
                        help='dump predictions with ground truth (JSON) for '
                        'tools/analysis/eval_froc.py')
    parser.add_argument('--show-dir', metavar='DIR',
                        help='save prediction/ground-truth overlays here')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    set_load_from(cfg, args.checkpoint)
    if args.out:
        set_froc_dump_file(cfg, args.out)
    if args.show_dir:
        add_visualization_hook(cfg, args.show_dir)
    enable_masks_if_needed(cfg)  # the FROC metric alone needs no masks
    setup_distributed(cfg, args.launcher)
    metrics = build_runner(cfg).test()
    if args.json_out and is_main_process():
        write_json(args.json_out, froc_summary(metrics))


if __name__ == '__main__':
    run_cli(main)
