"""tools/analysis/eval_froc.py, plot_froc.py and results_table.py."""
import csv
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from a3d_det.evaluation import evaluate_froc, image_record, save_froc_dump
from tests.helpers.tools import load_tool, run_main

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'analysis')


def _run(tool, *args, cwd=None):
    return subprocess.run([sys.executable, osp.join(TOOLS, tool), *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def _tool(name):
    return load_tool(f'analysis/{name}')


def _one_line_error(proc, tool):
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ')
    return lines[0]


@pytest.fixture
def dump(tmp_path):
    rng = np.random.default_rng(0)
    images = []
    for i in range(6):
        m, n = i % 3, 4
        xy = rng.uniform(0, 100, (m, 2))
        gt = np.hstack([xy, xy + 20])
        pred = np.vstack([gt + rng.normal(0, 2, (m, 4)),
                          rng.uniform(0, 100, (n - m, 4)) + [0, 0, 30, 30]])
        images.append(image_record(f'{i}.png', pred, rng.random(n), gt,
                                   slice_interval=1.0 + i, gt_diameters_mm=
                                   rng.uniform(5, 40, m),
                                   gt_lesion_types=rng.integers(1, 9, m)))
    path = tmp_path / 'dump.json'
    save_froc_dump(str(path), images)
    return path, images


def test_eval_froc_prints_table_and_writes_metrics(dump, tmp_path, capsys):
    # in-process (torch import); the subprocess path is tested below
    path, images = dump
    out = tmp_path / 'm.json'
    assert _tool('eval_froc.py').main([
        str(path), '--by', 'size', '--criterion', 'iobb', '--json-out',
        str(out)]) == 0
    stdout = capsys.readouterr().out
    assert 'iobb >= 0.3' in stdout
    assert '| all | 6 | 6 |' in stdout and '| size<10mm |' in stdout
    expected = evaluate_froc(images, criterion='iobb',
                             breakdowns=('size',)).metrics()
    assert json.loads(out.read_text()) == expected


@pytest.mark.slow
def test_eval_froc_user_errors_are_one_line(dump, tmp_path, capsys):
    line = _one_line_error(_run('eval_froc.py', str(tmp_path / 'no.json')),
                           'eval_froc')
    assert 'no.json: no such file' in line
    tool = _tool('eval_froc.py')
    (tmp_path / 'bad.json').write_text('not json')
    assert run_main(tool, [str(tmp_path / 'bad.json')]) == 2
    assert 'bad.json: not a valid JSON' in capsys.readouterr().err
    # a breakdown needing a field the dump does not have
    path, images = dump
    for im in images:
        im['gt_lesion_types'] = None
    save_froc_dump(str(path), images)
    assert run_main(tool, [str(path), '--by', 'type']) == 2
    assert "'gt_lesion_types'" in capsys.readouterr().err


def test_plot_froc_writes_png_and_reports_errors(dump, tmp_path, capsys):
    # in-process: plot_froc's imports (matplotlib, torch) are the slow part
    path, _ = dump
    tool = _tool('plot_froc.py')
    out = tmp_path / 'plots' / 'froc.png'
    assert tool.main([str(path), str(path), '--labels', 'A3D', 'ACS',
                      '--out', str(out), '--title', 'FROC']) == 0
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert out.stat().st_size > 5000
    assert run_main(tool, [str(path), '--labels', 'a', 'b', '--out',
                               str(tmp_path / 'x.png')]) == 2
    assert '2 labels for 1 dumps' in capsys.readouterr().err
    assert run_main(tool, [str(tmp_path / 'missing.json'), '--out',
                               str(tmp_path / 'x.png')]) == 2
    assert 'missing.json: no such file' in capsys.readouterr().err
    assert not (tmp_path / 'x.png').exists()


def _paper_value(method, slices, key):
    with open(osp.join(ROOT, 'docs', 'paper_tables.csv')) as f:
        for row in csv.DictReader(f):
            if (row['table'], row['method'], row['slices']) == (
                    '2', method, str(slices)):
                return row[key]
    raise KeyError(method)


@pytest.mark.slow
def test_results_table_puts_our_runs_next_to_the_paper(tmp_path):
    run_dir = tmp_path / 'a3d_densenet121_7slice_deeplesion'
    run_dir.mkdir()
    metrics = {'sens@0.5': .8012, 'sens@1': .85, 'sens@2': .9, 'sens@4': .93,
               'sens@8': .95, 'sens@16': .96, 'avg[0.5-4]': .8703}
    (run_dir / 'test.json').write_text(json.dumps(metrics))
    (tmp_path / 'x.json').write_text(json.dumps(metrics))
    proc = _run('results_table.py', '--runs', str(run_dir / 'test.json'),
                '--run', f'no_fusion:3:{tmp_path / "x.json"}')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    paper = next(i for i, ln in enumerate(lines)
                 if ln.startswith('| 7 | A3D (paper) |'))
    assert _paper_value('A3D', 7, 'sens@0.5') in lines[paper]
    assert lines[paper + 1] == ('| 7 | **A3D (ours)** | 80.12 | 85.00 | '
                                '90.00 | 93.00 | 95.00 | 96.00 | 87.03 |')
    nf = lines.index('| 3 | **No Fusion (ours)** | 80.12 | 85.00 | 90.00 | '
                     '93.00 | 95.00 | 96.00 | 87.03 |')
    assert lines[nf - 1].startswith('| 3 | No Fusion (paper) |')
    # Table 3: the state of the art, our runs last (--run, then --runs)
    assert "| V.Attn | MICCAI'19 | 3 | 69.10 | 77.90 | 83.80 | - |" in \
        proc.stdout
    assert lines[-2].startswith('| **No Fusion (ours)** | | 3 | 80.12')
    assert lines[-1].startswith('| **A3D (ours)** | | 7 | 80.12')


@pytest.mark.slow
def test_results_table_errors(tmp_path, capsys):
    line = _one_line_error(_run('results_table.py', '--run', 'a3d:x:y.json'),
                           'results_table')
    assert 'NAME:SLICES:PATH' in line
    tool = _tool('results_table.py')
    (tmp_path / 'run.json').write_text(json.dumps({'sens@0.5': 80.1}))
    assert run_main(tool, ['--run', f'a3d:7:{tmp_path / "run.json"}']) == 2
    assert 'not a fraction' in capsys.readouterr().err
    assert run_main(tool, ['--runs', str(tmp_path / 'run.json')]) == 2
    assert 'densenet121' in capsys.readouterr().err
