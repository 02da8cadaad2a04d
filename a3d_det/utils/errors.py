"""User mistakes: the exception the tools report in one line, and checks of
the files and folders a command line names."""
from __future__ import annotations

import os.path as osp

__all__ = ['UserInputError', 'require_dir', 'require_file']


class UserInputError(Exception):
    """A mistake in the command line or the files it names.

    The tools report it as one line ``error: <message>`` on stderr and exit
    with status 2 (:func:`a3d_det.utils.cli.run_cli`), like argparse does.
    """


def require_file(path: str, what: str) -> str:
    """``path`` if it is a file; else :class:`UserInputError` ``<what> not found: <path>``."""
    if not osp.isfile(path):
        raise UserInputError(f'{what} not found: {path}')
    return path


def require_dir(path: str, what: str) -> str:
    """``path`` if it is a folder; else :class:`UserInputError` ``<what> not found: <path>``."""
    if not osp.isdir(path):
        raise UserInputError(f'{what} not found: {path}')
    return path
