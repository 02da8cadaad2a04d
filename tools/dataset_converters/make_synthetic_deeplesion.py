"""Write a synthetic data set in DeepLesion's format (Images_png/ + DL_info.csv).

    python tools/dataset_converters/make_synthetic_deeplesion.py \
        --out-dir data/synthetic_deeplesion [--num-series 160 --size 128 --seed 0]
"""
from __future__ import annotations

import argparse
import time

from a3d_det.datasets.synthetic import make_synthetic_deeplesion
from a3d_det.utils.cli import run_cli
from a3d_det.utils.errors import UserInputError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out-dir', required=True, help='output folder')
    p.add_argument('--num-series', type=int, default=160, help='CT series (default 160)')
    p.add_argument('--size', type=int, default=128, help='image height in px (default 128)')
    p.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    p.add_argument('--non-square-fraction', type=float, default=0.1,
                   help='share of series 1.25x wider (default 0.1)')
    p.add_argument('--overwrite', action='store_true', help='write over an existing DL_info.csv')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        summary = make_synthetic_deeplesion(
            args.out_dir, num_series=args.num_series, size=args.size, seed=args.seed,
            non_square_fraction=args.non_square_fraction, overwrite=args.overwrite)
    except (ValueError, FileExistsError, OSError) as e:
        raise UserInputError(str(e)) from None
    print(f'wrote {summary["num_images"]} key images ({summary["num_lesions"]} lesions, '
          f'{summary["num_noisy"]} noisy rows, {summary["num_slices"]} slices; '
          f'train/val/test images {summary["splits"][1]}/{summary["splits"][2]}/'
          f'{summary["splits"][3]}) to {args.out_dir} in {time.perf_counter() - start:.1f} s')
    return 0


if __name__ == '__main__':
    run_cli(main)
