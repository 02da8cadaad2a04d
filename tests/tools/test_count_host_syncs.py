"""tools/analysis/count_host_syncs.py on the A3D config at 64 px."""
import sys

import pytest

from tests.helpers.tools import load_tool


def _run(monkeypatch, argv):
    monkeypatch.setattr(sys, 'argv', ['count_host_syncs.py', *argv])
    tool = load_tool('analysis/count_host_syncs.py')
    try:
        tool.run_cli(tool.main)
    except SystemExit as exc:
        return exc.code
    return 0


@pytest.mark.slow
def test_reports_prediction_and_training(monkeypatch, capsys):
    assert _run(monkeypatch, ['--size', '64', '--batch', '1']) == 0
    out = capsys.readouterr().out
    sections = out.split('\n\n')
    titles = [s.strip().splitlines()[0] for s in sections if s.strip()]
    assert [t.split(':')[0].split(' (')[0] for t in titles] == [
        'prediction, without masks', 'prediction, with masks',
        'training step']
    # Masks add no synchronisation: no item()/bool() anywhere in prediction.
    with_masks = [s for s in sections if 'with masks' in s and 'without' not in s][0]
    assert 'aten::_local_scalar_dense' not in with_masks
    assert 'lesion_roi_head.py' in out


def test_user_errors(monkeypatch, capsys):
    assert _run(monkeypatch, ['missing.py']) == 2
    assert capsys.readouterr().err.startswith('error: config file not found: missing.py')
