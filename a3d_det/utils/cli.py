"""The tools' command-line glue: one way to report user mistakes, the
arguments ``tools/train.py`` and ``tools/test.py`` share, JSON output.

Every tool runs its ``main`` through :func:`run_cli`: a
:class:`~a3d_det.utils.errors.UserInputError` (a missing file or folder, an
unreadable config, a bad argument value) becomes a one-line ``error: ...`` on
stderr and exit status 2, without a traceback, the same as argparse's own
errors.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import Any
from collections.abc import Callable, Mapping, Sequence

import torch
from mmengine.config import DictAction

from a3d_det.utils.errors import UserInputError

__all__ = ['add_common_args', 'run_cli', 'write_json']


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def run_cli(main: Callable[[], int | None]) -> None:
    """Run ``main()`` and exit with its status (``None``: 0); report a
    :class:`UserInputError` as one line ``error: <message>``, exit 2.

    A distributed run's ranks wait for each other after a successful run and
    destroy the process group before exiting: a rank leaving first while its
    gloo group was left to interpreter shutdown aborted the process
    ("terminate called without an active exception") in about half of the
    two-process runs here.
    """
    try:
        status = main()
    except UserInputError as err:
        print(f'error: {user_message(err)}', file=sys.stderr)
        sys.exit(2)
    else:
        if _distributed():  # every rank finished: leave together
            torch.distributed.barrier()
    finally:
        if _distributed():
            torch.distributed.destroy_process_group()
    sys.exit(status or 0)


def user_message(err: UserInputError) -> str:
    """The message of ``err``; for an error raised in a DataLoader worker
    (which torch re-raises with the worker's traceback as its message), the
    original message alone."""
    text = str(err)
    if text.startswith('Caught ') and '\nOriginal Traceback' in text:
        name = f'{type(err).__name__}: '
        start = text.rfind(name)
        if start >= 0:
            text = text[start + len(name):]
    return text.strip()


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options`` and ``--launcher`` (train and test)."""
    parser.add_argument('--work-dir',
                        help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default=None,
        help='override config keys, e.g. train_cfg.max_iters=10 '
        'test_dataloader.dataset.data_root=data/x')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='job launcher')
    # Set by the deprecated torch.distributed.launch; torchrun uses env vars.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def write_json(path: str, data: Mapping[str, Any] | Sequence[Any]) -> None:
    """Write ``data`` as indented JSON, creating the folder."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)
        f.write('\n')
