"""Which checkpoint `--resume` picks: damaged files are detected and skipped."""
import argparse
import os
import zipfile

import pytest
import torch

import a3d_det.engine  # noqa: F401  (weights_only loading of our files)
from a3d_det.engine import (checkpoint_problem, find_resume_checkpoint,
                            resume_candidates)


def _save(path, step=0):
    torch.save(dict(meta=dict(iter=step), state_dict=dict(w=torch.full((64, 64), float(step))),
                    message_hub={}), path)
    return path


def test_readable_checkpoint_has_no_problem(tmp_path):
    assert checkpoint_problem(str(_save(tmp_path / 'iter_2.pth'))) is None


def test_truncated_checkpoint(tmp_path):
    path = _save(tmp_path / 'iter_2.pth')
    data = path.read_bytes()
    for keep in (len(data) - 1, len(data) // 2, 10):
        path.write_bytes(data[:keep])
        assert checkpoint_problem(str(path)).startswith('truncated'), keep


def test_flipped_byte_inside_a_tensor_is_found_by_its_crc(tmp_path):
    """torch.load alone accepts this file and returns wrong weights."""
    path = _save(tmp_path / 'iter_2.pth', step=3)
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if '/data/' in i.filename)
    data = bytearray(path.read_bytes())
    # Stored uncompressed: the record's bytes follow its local header.
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    loaded = torch.load(path, weights_only=True)['state_dict']['w']
    assert not torch.equal(loaded, torch.full((64, 64), 3.0))
    assert checkpoint_problem(str(path)) == f'damaged: CRC mismatch in {info.filename}'


@pytest.mark.parametrize('content, expected', [
    (None, 'not found'),
    (b'', 'empty file'),
    (b'not a checkpoint at all', 'cannot be loaded: '),
])
def test_other_unreadable_files(tmp_path, content, expected):
    path = tmp_path / 'x.pth'
    if content is not None:
        path.write_bytes(content)
    assert checkpoint_problem(str(path)).startswith(expected)


def test_weights_only_file_is_not_a_training_checkpoint(tmp_path):
    torch.save(dict(state_dict={}), tmp_path / 'w.pth')
    torch.save([1, 2], tmp_path / 'l.pth')
    assert checkpoint_problem(str(tmp_path / 'w.pth')) == \
        'not a training checkpoint (no meta)'
    assert checkpoint_problem(str(tmp_path / 'l.pth')).startswith('not a checkpoint dict')


def test_unsafe_pickle_is_refused_not_executed(tmp_path):
    """weights_only stays on: a file that would run code is unreadable."""
    torch.save(dict(meta={}, state_dict={}, obj=argparse.Namespace(a=1)), tmp_path / 'evil.pth')
    assert checkpoint_problem(str(tmp_path / 'evil.pth')).startswith('cannot be loaded')


def test_candidates_newest_first_ignoring_temporary_files(tmp_path):
    for step in (2, 10, 4):
        _save(tmp_path / f'iter_{step}.pth', step)
    (tmp_path / '.iter_12.pth.abc123.tmp').write_bytes(b'partial')
    (tmp_path / 'iter_x.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_10.pth'))
    assert resume_candidates(str(tmp_path)) == [
        str(tmp_path / f'iter_{s}.pth') for s in (10, 4, 2)]


def test_candidates_prefer_the_kind_last_checkpoint_names(tmp_path):
    for name in ('iter_500.pth', 'epoch_3.pth', 'epoch_2.pth'):
        _save(tmp_path / name)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    assert [os.path.basename(p) for p in resume_candidates(str(tmp_path))] == [
        'epoch_3.pth', 'epoch_2.pth', 'iter_500.pth']


def test_candidates_include_out_dir_and_custom_names(tmp_path):
    """last_checkpoint may point outside the work dir (CheckpointHook out_dir)
    or to a custom filename_tmpl; its folder is searched as well."""
    work, out = tmp_path / 'work', tmp_path / 'out'
    work.mkdir()
    out.mkdir()
    _save(out / 'iter_4.pth')
    _save(out / 'model_6.pth')
    (work / 'last_checkpoint').write_text(str(out / 'model_6.pth'))
    assert resume_candidates(str(work)) == [str(out / 'model_6.pth'),
                                            str(out / 'iter_4.pth')]


def test_find_skips_damaged_and_reports_them(tmp_path):
    for step in (2, 4, 6):
        _save(tmp_path / f'iter_{step}.pth', step)
    (tmp_path / 'iter_6.pth').write_bytes((tmp_path / 'iter_6.pth').read_bytes()[:100])
    (tmp_path / 'iter_4.pth').write_bytes(b'')
    found = find_resume_checkpoint(str(tmp_path))
    assert found.checkpoint == str(tmp_path / 'iter_2.pth')
    assert [(os.path.basename(p), r.split(' ')[0]) for p, r in found.rejected] == [
        ('iter_6.pth', 'truncated'), ('iter_4.pth', 'empty')]


def test_find_in_empty_or_missing_work_dir(tmp_path):
    assert find_resume_checkpoint(str(tmp_path)) == (None, [])
    assert find_resume_checkpoint(str(tmp_path / 'missing')) == (None, [])


def test_last_checkpoint_naming_a_deleted_file_is_reported(tmp_path):
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == (
        None, [(str(tmp_path / 'gone.pth'), 'not found')])
