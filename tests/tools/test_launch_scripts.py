"""tools/slurm_train.sh, dist_train.sh and dist_test.sh build the right
command line, under `set -u`, with stand-in `srun`/`torchrun` that record
their arguments (nothing is launched)."""
import glob
import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs bash

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'
SCRIPTS = sorted(glob.glob(str(TOOLS / '*.sh')))


def _stub(bin_dir: Path, name: str) -> None:
    """An executable ``name`` writing its arguments, one per line, and its
    PYTHONPATH to $RECORD."""
    path = bin_dir / name
    path.write_text('#!/bin/sh\n'
                    'printf "%s\\n" "$@" > "$RECORD"\n'
                    'printf "%s\\n" "${PYTHONPATH-<unset>}" > "$RECORD.pythonpath"\n')
    path.chmod(0o755)


def _run(tmp_path: Path, script: str, args, stubs=('srun', 'torchrun'), env=None):
    """Run ``bash tools/<script> args`` in a bare environment: only the stubs
    and the system folders on PATH, no PYTHONPATH, GPUS, PORT or SRUN_ARGS."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    for name in stubs:
        _stub(bin_dir, name)
    record = tmp_path / 'record.txt'
    full_env = dict(PATH=f'{bin_dir}:/usr/bin:/bin', RECORD=str(record),
                    HOME=str(tmp_path), **(env or {}))
    out = subprocess.run(['bash', str(TOOLS / script), *args], cwd=tmp_path,
                         env=full_env, capture_output=True, text=True, timeout=60)
    recorded = record.read_text().splitlines() if record.exists() else None
    pythonpath = (tmp_path / 'record.txt.pythonpath').read_text().strip() \
        if record.exists() else None
    return out, recorded, pythonpath


SRUN_HEAD = ['-p', 'gpu', '--job-name=a3d', '--gres=gpu:4', '--ntasks=4',
             '--ntasks-per-node=4', '--cpus-per-task=5', '--kill-on-bad-exit=1']


@pytest.mark.parametrize('extra, expected_tail', [
    ([], []),
    (['work_dirs/run1'], ['--work-dir', 'work_dirs/run1']),
    (['work_dirs/run1', '--amp', '--cfg-options', 'a=1'],
     ['--work-dir', 'work_dirs/run1', '--amp', '--cfg-options', 'a=1']),
    (['--resume'], ['--resume']),
    (['work dir with spaces'], ['--work-dir', 'work dir with spaces']),
])
def test_slurm_train_command(tmp_path, extra, expected_tail):
    out, args, pythonpath = _run(tmp_path, 'slurm_train.sh', ['gpu', 'a3d', 'cfg.py', *extra])
    assert out.returncode == 0, out.stderr
    assert args == SRUN_HEAD + ['python', '-u', str(TOOLS / 'train.py'), 'cfg.py',
                                '--launcher', 'slurm', *expected_tail]
    assert pythonpath == f'{TOOLS}/..'


def test_slurm_train_environment(tmp_path):
    out, args, pythonpath = _run(
        tmp_path, 'slurm_train.sh', ['gpu', 'a3d', 'cfg.py'],
        env=dict(GPUS='16', CPUS_PER_TASK='3', SRUN_ARGS='--qos=high --time=2:00:00',
                 PYTHONPATH='/opt/x'))
    assert out.returncode == 0, out.stderr
    assert args[:9] == ['-p', 'gpu', '--job-name=a3d', '--gres=gpu:8', '--ntasks=16',
                        '--ntasks-per-node=8', '--cpus-per-task=3', '--kill-on-bad-exit=1',
                        '--qos=high']
    assert args[9] == '--time=2:00:00' and args[10] == 'python'
    assert pythonpath == f'{TOOLS}/..:/opt/x'


@pytest.mark.parametrize('script, head, tool', [
    ('dist_train.sh', ['cfg.py', '2'], ['train.py', 'cfg.py']),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '2'], ['test.py', 'cfg.py', 'ckpt.pth']),
])
@pytest.mark.parametrize('extra', [[], ['--work-dir', 'w', '--cfg-options', 'a=1']])
def test_dist_scripts_command(tmp_path, script, head, tool, extra):
    out, args, pythonpath = _run(tmp_path, script, [*head, *extra])
    assert out.returncode == 0, out.stderr
    assert args == ['--nnodes=1', '--node_rank=0', '--master_addr=127.0.0.1',
                    '--nproc_per_node=2', '--master_port=29500',
                    str(TOOLS / tool[0]), *tool[1:], '--launcher', 'pytorch', *extra]
    assert pythonpath == f'{TOOLS}/..'


def test_dist_train_multi_node_and_fallback_without_torchrun(tmp_path):
    """Without torchrun on PATH the same launcher runs as a python module."""
    out, args, _ = _run(tmp_path, 'dist_train.sh', ['cfg.py', '8'], stubs=('python',),
                        env=dict(NNODES='2', NODE_RANK='1', MASTER_ADDR='10.0.0.1',
                                 PORT='1234'))
    assert out.returncode == 0, out.stderr
    assert args[:7] == ['-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
                        '--master_addr=10.0.0.1', '--nproc_per_node=8',
                        '--master_port=1234']


@pytest.mark.parametrize('script, args', [
    ('slurm_train.sh', ['gpu', 'a3d']),
    ('dist_train.sh', ['cfg.py']),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth']),
])
def test_too_few_arguments_is_usage_error(tmp_path, script, args):
    out, recorded, _ = _run(tmp_path, script, args)
    assert out.returncode == 2 and recorded is None
    assert out.stderr.startswith('usage: ') and out.stderr.count('\n') == 1


@pytest.mark.parametrize('path', SCRIPTS, ids=os.path.basename)
def test_no_array_expansion(path):
    """bash < 4.4 under `set -u` fails on "${a[@]}" of an empty array (the
    bash here, 5.x, does not, so the runs above cannot catch it): the scripts
    expand no array at all, only "$@", which every bash accepts."""
    text = Path(path).read_text()
    assert 'set -euo pipefail' in text
    assert not re.findall(r'\$\{[A-Za-z_][A-Za-z0-9_]*\[[@*]\]', text)
    assert not re.search(r'^\s*(declare|local)\s+-a|=\(', text, re.M)
