"""Checkpoints and last_checkpoint are written atomically (temporary file + rename)."""
import os

import pytest
from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook

import a3d_det.engine  # noqa: F401
from a3d_det.engine import (ATOMIC_BACKEND, AtomicCheckpointHook,
                            AtomicLocalBackend, atomic_write)


def test_atomic_write_bytes_and_text(tmp_path):
    atomic_write(tmp_path / 'sub' / 'a.bin', b'\x00\x01')
    atomic_write(tmp_path / 'b.txt', 'caf\u00e9')
    assert (tmp_path / 'sub' / 'a.bin').read_bytes() == b'\x00\x01'
    assert (tmp_path / 'b.txt').read_text(encoding='utf-8') == 'caf\u00e9'
    assert sorted(os.listdir(tmp_path)) == ['b.txt', 'sub']


@pytest.mark.parametrize('exists', [False, True])
def test_crash_during_write_leaves_old_content_and_no_temporary(tmp_path, monkeypatch, exists):
    path = tmp_path / 'iter_4.pth'
    if exists:
        path.write_bytes(b'previous complete file')

    def crash(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='No space left'):
        atomic_write(path, b'x' * 100_000)
    monkeypatch.undo()
    if exists:
        assert path.read_bytes() == b'previous complete file'
    else:
        assert not path.exists()
    assert [p.name for p in tmp_path.iterdir()] == (['iter_4.pth'] if exists else [])


def test_backend_is_registered_and_writes_atomically(tmp_path, monkeypatch):
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend=ATOMIC_BACKEND))
    assert isinstance(backend, AtomicLocalBackend)
    calls = []
    monkeypatch.setattr(os, 'replace', lambda a, b: calls.append((a, b)) or
                        os.rename(a, b))
    backend.put(b'abc', backend.join_path(str(tmp_path), 'c.pth'))
    backend.put_text('xyz', str(tmp_path / 'd.txt'))
    assert (tmp_path / 'c.pth').read_bytes() == b'abc'
    assert (tmp_path / 'd.txt').read_text() == 'xyz'
    assert [os.path.basename(b) for _, b in calls] == ['c.pth', 'd.txt']
    assert all(os.path.basename(a).startswith(f'.{os.path.basename(b)}.')
               and a.endswith('.tmp') for a, b in calls)


def test_hook_defaults_to_the_atomic_backend_for_local_folders():
    hook = AtomicCheckpointHook(interval=1)
    assert isinstance(hook, CheckpointHook)
    assert hook.backend_args == dict(backend=ATOMIC_BACKEND)
    assert AtomicCheckpointHook(interval=1, out_dir='/tmp/x').backend_args == \
        dict(backend=ATOMIC_BACKEND)
    # The user's storage is kept.
    assert AtomicCheckpointHook(interval=1, out_dir='s3://bucket/run').backend_args is None
    assert AtomicCheckpointHook(
        interval=1, backend_args=dict(backend='local')).backend_args == dict(backend='local')


def test_runtime_config_selects_the_atomic_hook():
    from pathlib import Path

    from mmengine.config import Config
    runtime = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'default_runtime.py'
    cfg = Config.fromfile(str(runtime))
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    from a3d_det.registry import HOOKS as A3D_HOOKS
    assert A3D_HOOKS.get('AtomicCheckpointHook') is AtomicCheckpointHook
