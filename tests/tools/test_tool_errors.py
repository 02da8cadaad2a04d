"""Every tool answers a user's mistake alike: one line ``error: ...`` on
stderr, exit status 2, no traceback (the scripts themselves, in subprocesses)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: tool -> its arguments with a missing input ({tmp}: a fresh folder holding a
#: file ``a_file``), and what the error must name.
MISSING_INPUT = {
    'train.py': (['{tmp}/missing_config.py'], 'missing_config.py'),
    'test.py': (['{tmp}/missing_config.py', '{tmp}/missing.pth'], 'missing_config.py'),
    'infer.py': (['{tmp}/missing_config.py', '{tmp}/missing.pth', '{tmp}/missing_series',
                  '--out-dir', '{tmp}/out'], 'missing_config.py'),
    'analysis/get_flops.py': (['{tmp}/missing_config.py'], 'missing_config.py'),
    'analysis/count_host_syncs.py': (['{tmp}/missing_config.py'], 'missing_config.py'),
    'analysis/eval_froc.py': (['{tmp}/missing_dump.json'], 'missing_dump.json'),
    'analysis/plot_froc.py': (['{tmp}/missing_dump.json', '--out', '{tmp}/froc.png'],
                              'missing_dump.json'),
    'analysis/results_table.py': (['--run', 'a3d:7:{tmp}/missing_run.json'],
                                  'missing_run.json'),
    'analysis/benchmark.py': (['--task', 'train', '--from-json', '{tmp}/missing_run.json'],
                              'missing_run.json'),
    'dataset_converters/prepare_deeplesion.py': (['--data-root', '{tmp}/missing_root'],
                                                 'missing_root'),
    'dataset_converters/make_synthetic_deeplesion.py': (['--out-dir', '{tmp}/a_file/data'],
                                                        'a_file'),
}


def _run(tool: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / 'a_file').write_text('not a folder\n')
    argv = [a.format(tmp=tmp_path) for a in args]
    return subprocess.run([sys.executable, str(REPO / 'tools' / tool), *argv],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def _assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize('tool', sorted(MISSING_INPUT))
def test_missing_input_is_a_one_line_error(tool, tmp_path):
    args, needle = MISSING_INPUT[tool]
    _assert_one_line_error(_run(tool, args, tmp_path), needle)


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['train.py', 'test.py', 'infer.py', 'analysis/get_flops.py',
                                  'analysis/count_host_syncs.py'])
def test_unreadable_config_is_a_one_line_error(tool, tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text('model = dict(type=\n')
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'not a checkpoint')
    args = {'train.py': [str(config)], 'test.py': [str(config), str(ckpt)],
            'infer.py': [str(config), str(ckpt), str(tmp_path), '--out-dir', str(tmp_path / 'o')],
            'analysis/get_flops.py': [str(config)],
            'analysis/count_host_syncs.py': [str(config)]}[tool]
    _assert_one_line_error(_run(tool, args, tmp_path), 'cannot read config', 'broken.py')


@pytest.mark.slow
@pytest.mark.parametrize('tool, args, needle', [
    ('analysis/benchmark.py', ['--task', 'froc', '--images', '0'], '--images'),
    ('analysis/benchmark.py', ['--task', 'froc', '--device', 'nonsense'], 'nonsense'),
    ('analysis/get_flops.py', ['--num-slices', '0'], '--num-slices'),
    ('dataset_converters/make_synthetic_deeplesion.py',
     ['--out-dir', '{tmp}/x', '--size', '4'], 'size'),
])
def test_bad_argument_value_is_a_one_line_error(tool, args, needle, tmp_path):
    _assert_one_line_error(_run(tool, args, tmp_path), needle)
