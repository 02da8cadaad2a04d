"""Train a detector: ``python tools/train.py CONFIG [options]``.

Thin around mmengine's Runner: parse arguments, prepare the config
(``a3d_det.utils.runner_config``), build the Runner and call ``train()``. Distributed:
``tools/dist_train.sh CONFIG NPROC [options]`` (torchrun, ``--launcher
pytorch``) or ``tools/slurm_train.sh`` (srun, ``--launcher slurm``).
"""
import argparse

from a3d_det.engine import enable_masks_if_needed, setup_distributed
from a3d_det.utils.cli import add_common_args, run_cli
from a3d_det.utils.runner_config import (build_runner, enable_amp, load_config, set_resume,
                                         set_work_dir)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a lesion detector')
    parser.add_argument('config', help='config file (.py)')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None, metavar='CKPT',
        help='resume from CKPT, or without a value from the latest '
        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (fp16 on CUDA, bf16 on CPU)')
    parser.add_argument('--seed', type=int, default=None,
                        help='random seed (overrides randomness.seed)')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    set_resume(cfg, args.resume)
    enable_masks_if_needed(cfg)  # validation predicts masks only for a mask metric
    if args.amp:
        enable_amp(cfg)
    if args.seed is not None:
        cfg.randomness = dict(cfg.get('randomness') or {}, seed=args.seed)
    setup_distributed(cfg, args.launcher)
    build_runner(cfg).train()


if __name__ == '__main__':
    run_cli(main)
