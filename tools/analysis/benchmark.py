"""Benchmarks: ``python tools/analysis/benchmark.py --task TASK [options]``.

Tasks (``--task TASK --help`` lists a task's options):

* ``fusion``: forward + backward of the fusion operators, per layer and backbone;
* ``data``: DeepLesion multi-slice loading and the training pipeline, samples/s;
* ``froc``: the vectorised FROC against the published per-prediction loop;
* ``train``: seconds per training iteration and peak memory per fusion operator;
* ``infer``: latency per key slice of the A3D detector.

Every task times its cases in interleaved rounds (``--rounds``, order rotated
each round, untimed ``--warmup`` rounds first), reports medians and the median
of per-round ratios, by wall clock and by the process's CPU time, with CUDA
synchronised around each call (``a3d_det.utils.timing``). ``--json-out``
writes the measurements. User mistakes: one line ``error: ...``, exit 2.
"""
from __future__ import annotations

import argparse

import torch

from a3d_det.utils.benchmarks import TASKS, task_module
from a3d_det.utils.cli import run_cli, write_json
from a3d_det.utils.errors import UserInputError
from a3d_det.utils.timing import parse_device


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument('--task', choices=TASKS)
    task = first.parse_known_args(argv)[0].task
    module = task_module(task) if task else None
    parser = argparse.ArgumentParser(
        description=module.__doc__.split('\n\n')[0] if module else __doc__,
        epilog=module.__doc__.split('\n\n', 1)[-1] if module else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', required=True, choices=TASKS, help='what to time')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu or cuda[:N] (default: cuda when available)')
    parser.add_argument('--threads', type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument('--rounds', type=int, default=5, help='timed interleaved rounds')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    parser.add_argument('--json-out', metavar='FILE', help='write the measurements as JSON')
    if module:
        module.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        raise UserInputError('--rounds and --threads must be >= 1, --warmup >= 0')
    parse_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = task_module(args.task).run(args)
    if args.json_out:
        write_json(args.json_out, dict(task=args.task, args=vars(args), **results))


if __name__ == '__main__':
    run_cli(main)
