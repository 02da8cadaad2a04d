"""Checkpoints written under a temporary name and renamed into place.

mmengine 0.10.7 writes a checkpoint straight to its final name
(``LocalBackend.put``: ``open(path, 'wb').write(...)``) and then overwrites
``<work_dir>/last_checkpoint`` in place. A job killed during the write (a
pre-empted node, a full disk, a time limit) leaves a truncated
``iter_N.pth`` that ``--resume`` then picks as the latest one.

Here every write goes to a hidden temporary file in the same folder
(``.iter_N.pth.<random>.tmp``), is flushed to disk, and is renamed over the
final name with :func:`os.replace`, which is atomic on POSIX and Windows
file systems: a reader sees either the previous file or the complete new
one, never a partial one. A crash leaves at most a stray ``*.tmp`` file,
which nothing reads.

* :class:`AtomicLocalBackend` (file backend ``'atomic_local'``): mmengine's
  ``LocalBackend`` with atomic ``put``/``put_text``; the checkpoint bytes go
  through it because :class:`AtomicCheckpointHook` hands it to
  ``Runner.save_checkpoint`` as ``backend_args``.
* :class:`AtomicCheckpointHook`: mmengine's ``CheckpointHook`` using that
  backend for local folders (an explicit ``backend_args`` or a remote
  ``out_dir`` keeps the user's backend) and writing ``last_checkpoint``
  atomically as well. ``configs/_base_/default_runtime.py`` selects it.
"""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from pathlib import Path

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook

from a3d_det.registry import HOOKS

__all__ = ['atomic_write', 'AtomicLocalBackend', 'AtomicCheckpointHook',
           'ATOMIC_BACKEND']

#: Name of :class:`AtomicLocalBackend` in mmengine's file backends.
ATOMIC_BACKEND = 'atomic_local'


def atomic_write(path: str | Path, data: bytes | str,
                 encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``path`` so that ``path`` is never partly written.

    The data go to a temporary file in the same folder (same file system),
    which is flushed and ``fsync``-ed, then renamed over ``path``. On any
    error the temporary file is removed and ``path`` keeps its previous
    content (or stays absent). The folder is created when missing.

    Args:
        path: the final file name.
        data: bytes, or text encoded with ``encoding``.
        encoding: text encoding.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(path)}.',
                               suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Persist the rename (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic (:func:`atomic_write`)."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        """Write bytes to ``filepath`` through a temporary file."""
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: str | Path,
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` through a temporary file."""
        atomic_write(filepath, obj, encoding=encoding)


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def _is_local(path: str | Path | None) -> bool:
    return path is None or '://' not in str(path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints and ``last_checkpoint`` file are
    written atomically (temporary file, then rename).

    Takes every argument of mmengine's ``CheckpointHook``. Without
    ``backend_args``/``file_client_args`` and with a local (or default)
    ``out_dir`` it writes through :class:`AtomicLocalBackend`; otherwise it
    behaves exactly as ``CheckpointHook`` for the checkpoint files.
    """

    def __init__(self, *args, **kwargs) -> None:
        if (kwargs.get('backend_args') is None
                and kwargs.get('file_client_args') is None
                and _is_local(kwargs.get('out_dir'))):
            kwargs['backend_args'] = dict(backend=ATOMIC_BACKEND)
        super().__init__(*args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """mmengine 0.10.7's ``CheckpointHook._save_checkpoint_with_step``
        (rotation of ``max_keep_ckpts``, the save) with ``last_checkpoint``
        written atomically."""
        if self.max_keep_ckpts > 0 and not (
                len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
            # Remove the oldest kept checkpoint before saving (mmengine's order).
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                old_step = self.keep_ckpt_ids.popleft()
                if is_main_process():
                    old_path = self.file_backend.join_path(
                        self.out_dir, self.filename_tmpl.format(old_step))
                    if self.file_backend.isfile(old_path):
                        self.file_backend.remove(old_path)
                    elif self.file_backend.isdir(old_path):
                        self.file_backend.rmtree(old_path)
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if is_main_process():
            atomic_write(osp.join(runner.work_dir, 'last_checkpoint'),
                         str(self.last_ckpt))
