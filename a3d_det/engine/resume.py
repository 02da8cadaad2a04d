"""Choosing the checkpoint ``--resume`` restarts from, skipping damaged ones.

A checkpoint truncated by a full disk, an interrupted copy or a job killed
while saving used to stop ``tools/train.py CONFIG --resume`` with a
zip-reader traceback although the previous checkpoint was intact. Here

* :func:`checkpoint_problem` reads a file the way resuming will and says why
  it cannot be used (``None`` when it can): the zip archive is complete and
  every record matches its CRC-32 (``torch.load`` alone accepts a file with
  flipped bytes inside a tensor), and ``torch.load(weights_only=True)``
  unpickles it (memory-mapped, so tensors are not read twice) into a
  checkpoint with ``meta`` and ``state_dict``;
* :func:`find_resume_checkpoint` tries the checkpoints of a work dir from the
  newest (highest iteration or epoch number; the file ``last_checkpoint``
  names when it is not numbered) to the oldest and returns the first
  readable one, with what it tried.

:func:`a3d_det.engine.set_resume` uses both for ``--resume`` with and
without a path.
"""
from __future__ import annotations

import os
import os.path as osp
import re
import zipfile
from typing import NamedTuple

import torch

__all__ = ['checkpoint_problem', 'find_resume_checkpoint', 'resume_candidates',
           'ResumeSearch', 'CHECKPOINT_NAME']

#: Names mmengine's CheckpointHook gives checkpoints (``filename_tmpl``).
CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')

# Keys mmengine's Runner.resume reads from every checkpoint.
_RESUME_KEYS = ('meta', 'state_dict')


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= limit else line[:limit - 3] + '...'


def checkpoint_problem(path: str, require: tuple[str, ...] = _RESUME_KEYS
                       ) -> str | None:
    """Why ``path`` cannot be loaded as a checkpoint, or ``None`` if it can.

    Args:
        path: a checkpoint file.
        require: top-level keys the checkpoint must have.

    Returns:
        A short one-line reason (``'not found'``, ``'empty file'``,
        ``'truncated or not a zip archive'``, ``'damaged: CRC mismatch in
        <record>'``, the first line of ``torch.load``'s error, or the missing
        keys), or ``None``.
    """
    if not osp.isfile(path):
        return 'not found'
    if osp.getsize(path) == 0:
        return 'empty file'
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            return f'truncated or damaged zip archive ({_first_line(err)})'
        if bad is not None:
            return f'damaged: CRC mismatch in {bad}'
    elif _looks_like_truncated_zip(path):
        return 'truncated or not a zip archive'
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True,
                                mmap=is_zip)
    except Exception as err:  # noqa: BLE001  (any failure makes it unusable)
        return f'cannot be loaded: {_first_line(err)}'
    if not isinstance(checkpoint, dict):
        return f'not a checkpoint dict ({type(checkpoint).__name__})'
    missing = [key for key in require if key not in checkpoint]
    if missing:
        return f"not a training checkpoint (no {', '.join(missing)})"
    return None


def _looks_like_truncated_zip(path: str) -> bool:
    """A zip's local header magic without an end-of-central-directory record."""
    with open(path, 'rb') as f:
        return f.read(4) == b'PK\x03\x04'


class ResumeSearch(NamedTuple):
    """Result of :func:`find_resume_checkpoint`.

    Attributes:
        checkpoint: the newest readable checkpoint, or ``None``.
        rejected: ``(path, reason)`` of every newer one that was tried.
    """

    checkpoint: str | None
    rejected: list[tuple[str, str]]


def _read_last_checkpoint(work_dir: str) -> str | None:
    """The path ``<work_dir>/last_checkpoint`` names (``None`` if absent/empty)."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record, errors='replace') as f:
        text = f.read().strip()
    return text or None


def resume_candidates(work_dir: str) -> list[str]:
    """Checkpoints of ``work_dir``, newest first.

    ``iter_N.pth`` / ``epoch_N.pth`` in the work dir and in the folder the
    ``last_checkpoint`` file points to (a CheckpointHook ``out_dir``), by
    decreasing N; the kind (iter or epoch) ``last_checkpoint`` names first
    when both are present. A ``last_checkpoint`` target with another name
    (a custom ``filename_tmpl``) comes first. Temporary files of an
    interrupted save (``.iter_N.pth.*.tmp``) are never candidates.
    """
    last = _read_last_checkpoint(work_dir)
    folders = [work_dir] + ([osp.dirname(last)] if last and osp.dirname(last) else [])
    preferred_kind = None
    if last is not None:
        match = CHECKPOINT_NAME.match(osp.basename(last))
        preferred_kind = match.group(1) if match else None
    numbered: dict[str, tuple[bool, int]] = {}
    seen: set[str] = set()
    for folder in folders:
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            match = CHECKPOINT_NAME.match(name)
            path = osp.join(folder, name)
            if match and osp.realpath(path) not in seen:
                seen.add(osp.realpath(path))
                numbered[path] = (match.group(1) != preferred_kind,
                                  -int(match.group(2)))
    ordered = sorted(numbered, key=lambda p: numbered[p])
    if last is not None and osp.realpath(last) not in seen:
        ordered.insert(0, last)
    return ordered


def find_resume_checkpoint(work_dir: str) -> ResumeSearch:
    """The newest readable checkpoint of ``work_dir`` (see :func:`resume_candidates`).

    Args:
        work_dir: the run's work dir.

    Returns:
        The checkpoint (``None`` when there is none, or none is readable)
        and the newer ones rejected, with their reasons.
    """
    rejected: list[tuple[str, str]] = []
    for path in resume_candidates(work_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return ResumeSearch(path, rejected)
        rejected.append((path, problem))
    return ResumeSearch(None, rejected)
