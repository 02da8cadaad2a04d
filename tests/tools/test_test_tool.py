"""tools/test.py and tools/dist_test.sh on a tiny real model (CPU)."""
import json

import pytest

from tests.helpers.platform_fixtures import (free_port, run_tool, run_tool_in_process,
                                             write_tiny_config)

#: Every test here trains or tests in subprocesses.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('tested')
    cfg = write_tiny_config(root / 'tiny.py', max_iters=4, val_interval=4)
    out = run_tool(['tools/train.py', str(cfg), '--work-dir',
                    str(root / 'train')])
    assert out.returncode == 0, out.stderr[-3000:]
    return cfg, root / 'train' / 'iter_4.pth'


def test_json_out_one_and_two_processes(trained, tmp_path):
    """The summary JSON; two gloo processes gather the same results."""
    cfg, ckpt = trained
    single = tmp_path / 'single.json'
    out = run_tool(['tools/test.py', str(cfg), str(ckpt), '--work-dir',
                    str(tmp_path / 'w1'), '--json-out', str(single)])
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'Load checkpoint from' in out.stdout + out.stderr
    result = json.loads(single.read_text())
    assert result['count'] == 11 and result['index_sum'] == 55
    assert 0 <= result['mse'] < 20

    double = tmp_path / 'double.json'
    out = run_tool(['bash', 'tools/dist_test.sh', str(cfg), str(ckpt), '2',
                    '--work-dir', str(tmp_path / 'w2'), '--json-out',
                    str(double)],
                   env_extra={'PORT': str(free_port())}, timeout=400)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log
    result2 = json.loads(double.read_text())
    assert result2['count'] == 11 and result2['index_sum'] == 55
    assert result2['mse'] == pytest.approx(result['mse'], rel=1e-6)


@pytest.mark.parametrize('args, message', [
    (['missing.py', '{ckpt}'], 'error: config file not found: missing.py'),
    (['{cfg}', 'missing.pth'], 'error: checkpoint not found: missing.pth'),
    (['{cfg}', '{ckpt}', '--out', '{tmp}/pred.json'],
     'error: --out needs a DeepLesionFROCMetric in test_evaluator'),
])
def test_user_errors_are_one_line(trained, tmp_path, monkeypatch, capsys,
                                  args, message):
    cfg, ckpt = trained
    args = [a.format(cfg=cfg, ckpt=ckpt, tmp=tmp_path) for a in args]
    code = run_tool_in_process('test.py', [*args, '--work-dir', str(tmp_path)],
                               monkeypatch)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count('\n') == 1, err
