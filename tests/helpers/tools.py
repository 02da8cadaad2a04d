"""A script of ``tools/`` (not a package) loaded as a module, for in-process tests."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'


def load_tool(relpath: str) -> ModuleType:
    """``tools/<relpath>`` (e.g. ``'analysis/get_flops.py'``) as the module
    ``tool_<stem>``, registered in ``sys.modules`` (dataclasses look it up)."""
    path = TOOLS / relpath
    name = 'tool_' + path.stem
    if name in sys.modules and getattr(sys.modules[name], '__file__', None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_main(module: ModuleType, argv: list[str]) -> int:
    """Run ``module.main(argv)`` as the script's ``__main__`` does (through
    :func:`a3d_det.utils.cli.run_cli`) and return the exit status."""
    from a3d_det.utils.cli import run_cli
    try:
        run_cli(lambda: module.main(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    raise AssertionError('run_cli returned without exiting')


def benchmark_args(task: str, *argv: str) -> argparse.Namespace:
    """The options ``tools/analysis/benchmark.py --task TASK --device cpu ARGV``
    hands the task, parsed by the tool's own parser."""
    return load_tool('analysis/benchmark.py').parse_args(
        ['--task', task, '--device', 'cpu', *argv])
