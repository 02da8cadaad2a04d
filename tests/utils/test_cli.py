"""The tools' glue: one-line user errors, JSON output, the names that moved."""
import json
import subprocess
import sys

import pytest

from a3d_det.utils.cli import run_cli, write_json
from a3d_det.utils.errors import UserInputError


def test_write_json(tmp_path):
    path = tmp_path / 'a' / 'b.json'
    write_json(str(path), {'x': 1.0})
    assert json.loads(path.read_text()) == {'x': 1.0}


def test_run_cli_user_error_is_one_line(capsys):
    def main():
        raise UserInputError('checkpoint not found: x.pth')
    with pytest.raises(SystemExit) as exc:
        run_cli(main)
    assert exc.value.code == 2
    assert capsys.readouterr().err == 'error: checkpoint not found: x.pth\n'


def test_run_cli_exits_with_mains_status():
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: 3)
    assert exc.value.code == 3
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: None)
    assert exc.value.code == 0


@pytest.mark.slow
def test_engine_keeps_the_moved_names_without_importing_evaluation():
    code = ('import sys, a3d_det.engine as e; '
            'assert "a3d_det.evaluation" not in sys.modules, "engine imported evaluation"; '
            'from a3d_det.utils.runner_config import load_config; '
            'from a3d_det.evaluation import FROC_KEYS; '
            'assert e.load_config is load_config and e.FROC_KEYS is FROC_KEYS; '
            'assert e.UserInputError.__module__ == "a3d_det.utils.errors"')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_user_message_of_an_error_raised_in_a_dataloader_worker():
    """torch re-raises a worker's exception with the worker's traceback as its
    message; the one-line report keeps the original message only."""
    from torch._utils import ExceptionWrapper

    from a3d_det.datasets import SkippedSamplesError
    from a3d_det.utils.cli import user_message

    try:
        raise SkippedSamplesError('training stopped: 3 of 6 samples skipped')
    except SkippedSamplesError:
        wrapped = ExceptionWrapper(where='in DataLoader worker process 0')
    with pytest.raises(SkippedSamplesError) as info:
        wrapped.reraise()
    assert 'Traceback' in str(info.value)
    assert user_message(info.value) == 'training stopped: 3 of 6 samples skipped'
    assert user_message(UserInputError('no such file: x.py')) == 'no such file: x.py'
