"""The tasks of tools/analysis/benchmark.py, run small in-process."""
import json
import statistics

import pytest
import torch

from a3d_det.registry import MODELS
from a3d_det.utils.benchmarks import TASKS, task_module
from a3d_det.utils.benchmarks import data as data_task
from a3d_det.utils.benchmarks import froc as froc_task
from a3d_det.utils.benchmarks import fusion as fusion_task
from a3d_det.utils.benchmarks import train as train_task
from a3d_det.utils.errors import UserInputError
from tests.helpers.tools import benchmark_args


def test_every_task_has_the_interface():
    for name in TASKS:
        module = task_module(name)
        assert callable(module.add_arguments) and callable(module.run)
        assert module.__doc__.split('\n\n')[0]


def test_froc_task_times_both_and_checks_identity(capsys):
    result = froc_task.run(benchmark_args('froc', '--images', '40', '--rounds', '2'))
    assert result['identical'] is True
    assert len(result['vectorised']['wall']) == len(result['loop reference']['wall']) == 2
    expected = statistics.median(a / b for a, b in zip(result['loop reference']['wall'],
                                                        result['vectorised']['wall']))
    assert result['speedup'] == pytest.approx(expected)
    assert 'identical results: True' in capsys.readouterr().out


def test_froc_task_rejects_bad_values():
    with pytest.raises(UserInputError, match='--images'):
        froc_task.run(benchmark_args('froc', '--images', '0'))


def test_einsum_reference_is_a3d():
    torch.manual_seed(0)
    kw = dict(type='A3DConv', in_channels=4, out_channels=6, kernel_size=3, padding=1,
              num_slices=3)
    a3d = MODELS.build(kw)
    ref = MODELS.build(dict(kw, type=fusion_task.REFERENCE))
    ref.load_state_dict(a3d.state_dict())
    x = torch.randn(1, 4, 3, 8, 8)
    torch.testing.assert_close(ref(x), a3d(x), rtol=1e-5, atol=1e-5)


def test_fusion_task_rejects_unknown_operators():
    with pytest.raises(UserInputError, match='unknown operators'):
        fusion_task.run(benchmark_args('fusion', '--ops', 'NoSuchConv'))


def test_data_task_small(capsys):
    result = data_task.run(benchmark_args('data', '--size', '48', '--samples', '2',
                                          '--rounds', '1', '--warmup', '0', '--num-slices', '3'))
    assert [r['case'] for r in result['rows']][0] == 'baseline (decode per use)'
    assert result['rows'][0]['vs_baseline'] == 1.0
    assert all(r['per_s'] > 0 and len(r['wall']) == 1 for r in result['rows'])


def _run(fusion, d, seconds, cpu, peak, train=None):
    res = dict(fusion=fusion, num_slices=d, times=seconds, cpu_times=cpu, peak_mib=peak,
               device='cpu', size=64, amp=False, threads=1)
    if train is not None:
        res['train_mib'] = train
    return res


def test_train_summary_medians_and_ratios():
    results = [_run('A3DConv', 3, [3.0, 5.0], [1.0, 1.0], 100, 10),
               _run('NoFusionConv', 3, [2.0, 2.0], [0.5, 0.5], 90, 8),
               _run('A3DConv', 3, [4.0], [2.0], 120, 20),
               _run('A3DConv', 7, [1.0], [1.0], 50, 5)]
    table = train_task.summarise(results)
    assert [(e['fusion'], e['num_slices']) for e in table] == [
        ('NoFusionConv', 3), ('A3DConv', 3), ('A3DConv', 7)]
    a3d = table[1]
    assert a3d['s_per_iter'] == 4.0 and a3d['n'] == 3
    assert a3d['ratio'] == 2.0 and a3d['cpu_ratio'] == 2.0
    assert a3d['peak_mib'] == 110 and a3d['train_mib'] == 15
    assert table[2]['ratio'] is None  # no NoFusionConv at 7 slices
    lines = train_task.format_table(table, cpu=True).splitlines()
    assert lines[0].count('|') == lines[1].count('|') == lines[2].count('|')
    assert lines[4].endswith('| - | 1.00 | - | 50 | 5 |')


def test_train_from_json_checks_its_files(tmp_path):
    a, b = tmp_path / 'a.json', tmp_path / 'b.json'
    a.write_text(json.dumps(dict(results=[_run('A3DConv', 3, [1.0], [1.0], 1)])))
    b.write_text(json.dumps(dict(results=[dict(_run('A3DConv', 3, [1.0], [1.0], 1), size=512)])))
    assert len(train_task._read_results([str(a), str(a)])) == 2
    with pytest.raises(UserInputError, match='mix settings'):
        train_task._read_results([str(a), str(b)])
    with pytest.raises(UserInputError, match='--from-json file not found'):
        train_task._read_results([str(tmp_path / 'missing.json')])
    (tmp_path / 'other.json').write_text('[1, 2]')
    with pytest.raises(UserInputError, match='not a --json-out file'):
        train_task._read_results([str(tmp_path / 'other.json')])
