"""tools/train.py and tools/dist_train.sh on a tiny real model (CPU).

Platform mechanics independent of the detector: logging with ETA,
TensorBoard files, checkpoints, resume after a killed run (bit-identical to
an uninterrupted run), --amp on CPU, two-process gloo training, and the
one-line errors for user mistakes.
"""
import shutil
from pathlib import Path

import pytest
import torch

import a3d_det.engine  # noqa: F401  (weights_only loading of our files)
from a3d_det.engine import checkpoint_problem
from tests.helpers.platform_fixtures import (free_port, run_tool, run_tool_in_process,
                                             write_tiny_config)


def _weights(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope='module')
def configs(tmp_path_factory):
    root = tmp_path_factory.mktemp('cfg')
    plain = write_tiny_config(root / 'tiny.py')
    killed = write_tiny_config(
        root / 'tiny_killed.py',
        extra="custom_hooks = [dict(type='KillAtIterHook', at_iter=5)]\n")
    with_tensorboard = write_tiny_config(root / 'tiny_tb.py', tensorboard=True)
    killed_saving = write_tiny_config(
        root / 'tiny_killed_saving.py',
        extra="custom_hooks = [dict(type='KillDuringSaveHook', at_iter=4)]\n")
    return plain, killed, with_tensorboard, killed_saving


@pytest.fixture(scope='module')
def full_run(configs, tmp_path_factory):
    """8 iterations uninterrupted; checkpoints every 2, validation every 4."""
    work_dir = tmp_path_factory.mktemp('full')
    out = run_tool(['tools/train.py', str(configs[2]), '--work-dir',
                    str(work_dir)])
    assert out.returncode == 0, out.stderr[-3000:]
    return work_dir, out.stdout + out.stderr


@pytest.mark.slow
def test_train_logs_checkpoints_tensorboard(full_run):
    work_dir, log = full_run
    assert 'Iter(train) [8/8]' in log and 'eta:' in log
    # Validation ran twice, on every sample once.
    assert log.count('tiny/count: 11  tiny/index_sum: 55') == 2
    for it in (2, 4, 6, 8):
        assert (work_dir / f'iter_{it}.pth').is_file()
    assert list(work_dir.glob('*/vis_data/events.out.tfevents.*')), \
        'no TensorBoard event file'
    assert list(work_dir.glob('*/vis_data/scalars.json'))
    # Training learned something: the validation error went down.
    mses = [float(x.split()[0]) for x in log.split('tiny/mse: ')[1:]]
    assert len(mses) == 2 and mses[1] < mses[0]


@pytest.mark.slow
def test_killed_run_resumes_from_last_checkpoint(configs, full_run,
                                                 tmp_path):
    """SIGKILL after iteration 5, then `--resume`: continues from iteration
    4 and ends with exactly the weights of the uninterrupted run."""
    plain, killed = configs[:2]
    crashed = run_tool(['tools/train.py', str(killed), '--work-dir',
                        str(tmp_path)])
    assert crashed.returncode != 0  # killed by signal
    assert (tmp_path / 'iter_4.pth').is_file()
    assert not (tmp_path / 'iter_6.pth').exists()

    resumed = run_tool(['tools/train.py', str(plain), '--work-dir',
                        str(tmp_path), '--resume'])
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert f'--resume: resuming from {tmp_path}/iter_4.pth' in log
    assert 'warning: --resume' not in log
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/8]' in log and 'Iter(train) [4/8]' not in log
    _assert_same_weights(tmp_path / 'iter_8.pth', full_run[0] / 'iter_8.pth')


@pytest.mark.slow
def test_resume_from_named_checkpoint(configs, full_run, tmp_path):
    plain = configs[0]
    out = run_tool(['tools/train.py', str(plain), '--work-dir', str(tmp_path),
                    '--resume', str(full_run[0] / 'iter_6.pth')])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert 'resumed epoch: 0, iter: 6' in log
    _assert_same_weights(tmp_path / 'iter_8.pth', full_run[0] / 'iter_8.pth')


def _truncate(path: Path) -> None:
    """Keep the first half of the file (a full disk, an interrupted copy)."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _copy_run(src: Path, dst: Path, iters) -> None:
    """Copy checkpoints iter_<i>.pth; last_checkpoint names the last one."""
    for it in iters:
        shutil.copy(src / f'iter_{it}.pth', dst / f'iter_{it}.pth')
    (dst / 'last_checkpoint').write_text(str(dst / f'iter_{iters[-1]}.pth'))


@pytest.mark.slow
def test_resume_falls_back_past_a_truncated_checkpoint(configs, full_run,
                                                       tmp_path):
    """The newest checkpoint (iter_6) is truncated: `--resume` warns naming
    it, continues from iter_4 and ends with the uninterrupted run's weights."""
    _copy_run(full_run[0], tmp_path, (2, 4, 6))
    _truncate(tmp_path / 'iter_6.pth')
    out = run_tool(['tools/train.py', str(configs[0]), '--work-dir',
                    str(tmp_path), '--resume'])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    warnings = [line for line in out.stderr.splitlines()
                if line.startswith('warning: --resume')]
    assert len(warnings) == 1, out.stderr[-3000:]
    assert f'cannot read checkpoint {tmp_path}/iter_6.pth: truncated' \
        in warnings[0]
    assert f'--resume: resuming from {tmp_path}/iter_4.pth' in log
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/8]' in log and 'Iter(train) [4/8]' not in log
    _assert_same_weights(tmp_path / 'iter_8.pth', full_run[0] / 'iter_8.pth')
    assert checkpoint_problem(str(tmp_path / 'iter_6.pth')) is None  # rewritten


@pytest.mark.slow
def test_kill_while_saving_leaves_no_partial_checkpoint(configs, full_run,
                                                       tmp_path):
    """SIGKILL in the middle of writing iter_4.pth: nothing under that name,
    last_checkpoint still names iter_2.pth, and `--resume` continues from it
    to the uninterrupted run's weights."""
    crashed = run_tool(['tools/train.py', str(configs[3]), '--work-dir',
                        str(tmp_path)])
    assert crashed.returncode != 0  # killed by signal
    assert not (tmp_path / 'iter_4.pth').exists()
    assert list(tmp_path.glob('.iter_4.pth.*.tmp')), 'the kill missed the save'
    assert checkpoint_problem(str(tmp_path / 'iter_2.pth')) is None
    assert (tmp_path / 'last_checkpoint').read_text() == \
        str(tmp_path / 'iter_2.pth')

    resumed = run_tool(['tools/train.py', str(configs[0]), '--work-dir',
                        str(tmp_path), '--resume'])
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert 'resumed epoch: 0, iter: 2' in log and 'warning: --resume' not in log
    _assert_same_weights(tmp_path / 'iter_8.pth', full_run[0] / 'iter_8.pth')


def _fake_run(work_dir: Path, iters) -> None:
    """Training checkpoints iter_<i>.pth (meta and weights), last_checkpoint."""
    for it in iters:
        torch.save(dict(meta=dict(iter=it), state_dict={'linear.weight': torch.ones(1, 4)}),
                   work_dir / f'iter_{it}.pth')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / f'iter_{iters[-1]}.pth'))


def test_resume_with_no_readable_checkpoint_is_one_line_error(
        configs, tmp_path, monkeypatch, capsys):
    _fake_run(tmp_path, (2, 4))
    for it in (2, 4):
        _truncate(tmp_path / f'iter_{it}.pth')
    code = run_tool_in_process('train.py', [str(configs[0]), '--work-dir',
                                            str(tmp_path), '--resume'],
                               monkeypatch)
    assert code == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith(f'error: --resume: no readable checkpoint in {tmp_path}')
    # Newest first, each with its reason.
    assert last.index('iter_4.pth (truncated') < last.index('iter_2.pth (truncated')
    assert 'Traceback' not in err
    assert not (tmp_path / 'iter_6.pth').exists()


def test_resume_from_named_unreadable_checkpoint_is_one_line_error(
        configs, tmp_path, monkeypatch, capsys):
    _fake_run(tmp_path, (2, 4))
    _truncate(tmp_path / 'iter_4.pth')
    code = run_tool_in_process('train.py', [
        str(configs[0]), '--work-dir', str(tmp_path),
        '--resume', str(tmp_path / 'iter_4.pth')], monkeypatch)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: cannot read checkpoint to resume from: '
                          f'{tmp_path / "iter_4.pth"}: truncated')
    assert err.count('\n') == 1, err
    assert not (tmp_path / 'iter_6.pth').exists()


@pytest.mark.slow
def test_amp_and_cfg_options(configs, tmp_path):
    out = run_tool(['tools/train.py', str(configs[0]), '--work-dir',
                    str(tmp_path), '--amp', '--seed', '3', '--cfg-options',
                    'train_cfg.max_iters=2', 'train_cfg.val_interval=2'])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() \
        else 'CPUAmpOptimWrapper'
    assert f"type='{expected}'" in log
    assert 'Iter(train) [2/2]' in log and 'seed: 3' in log
    assert (tmp_path / 'iter_2.pth').is_file()


@pytest.mark.parametrize('args, message', [
    (['missing_config.py'], 'error: config file not found: missing_config.py'),
    (['{cfg}', '--resume', 'nowhere.pth'],
     'error: checkpoint to resume from not found: nowhere.pth'),
    (['{cfg}', '--launcher', 'pytorch'],
     'error: --launcher pytorch needs the environment variables'),
])
def test_user_errors_are_one_line(configs, tmp_path, monkeypatch, capsys,
                                  args, message):
    """The real script, run in this process (no subprocess start-up)."""
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    args = [a.format(cfg=configs[0]) for a in args]
    code = run_tool_in_process('train.py', [*args, '--work-dir', str(tmp_path)],
                               monkeypatch)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count('\n') == 1, err
    assert not (tmp_path / 'iter_2.pth').exists()


@pytest.mark.slow
def test_two_process_gloo_training(configs, tmp_path):
    """tools/dist_train.sh CONFIG 2 on CPU: gloo, DDP, distributed val."""
    out = run_tool(['bash', 'tools/dist_train.sh', str(configs[0]), '2',
                    '--work-dir', str(tmp_path), '--cfg-options',
                    'train_cfg.max_iters=4'],
                   env_extra={'PORT': str(free_port())}, timeout=400)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log
    assert "backend='gloo'" in log
    assert 'device_ids=None' in log
    # 16 samples, 2 ranks x batch 4: 2 iterations per epoch.
    assert 'Iter(train) [4/4]' in log
    # Validation gathered every sample of both ranks exactly once.
    assert 'tiny/count: 11  tiny/index_sum: 55' in log
    assert (tmp_path / 'iter_4.pth').is_file()
    assert 'Traceback' not in log


@pytest.mark.slow
def test_slurm_script_with_fake_srun(configs, tmp_path):
    """tools/slurm_train.sh builds the srun command and train.py runs with
    --launcher slurm (here a stand-in srun that starts one task locally)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(
        '#!/usr/bin/env bash\n'
        'echo "$@" > "$FAKE_SRUN_ARGS"\n'
        'while [ "$1" != python ]; do shift; done\n'
        'export SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 '
        'SLURM_NODELIST=localhost MASTER_ADDR=127.0.0.1\n'
        'exec "$@"\n')
    srun.chmod(0o755)
    record = tmp_path / 'srun_args.txt'
    import os
    out = run_tool(['bash', 'tools/slurm_train.sh', 'gpu_part', 'a3d_job',
                    str(configs[0]), str(tmp_path / 'work'),
                    '--cfg-options', 'train_cfg.max_iters=2'],
                   env_extra={'PATH': f"{bin_dir}:{os.environ['PATH']}",
                              'FAKE_SRUN_ARGS': str(record), 'GPUS': '4',
                              'PORT': str(free_port())})
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    srun_args = record.read_text()
    for expected in ('-p gpu_part', '--job-name=a3d_job', '--ntasks=4',
                     '--gres=gpu:4', '--launcher slurm',
                     f'--work-dir {tmp_path / "work"}'):
        assert expected in srun_args
    assert 'Distributed launcher: slurm' in log
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
