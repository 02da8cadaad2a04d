"""Every third-party import is declared: a fresh install has what the code needs.

``a3d_det/`` and ``tools/`` may import only what ``requirements/runtime.txt``
declares (``pip install -e .``); ``tests/`` also what
``requirements/tests.txt`` declares (the ``tests`` extra). setup.py must
install exactly those lists. A package installed by hand on one machine then
cannot hide a missing declaration.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DIRS = ('a3d_det', 'tools')
TEST_DIRS = ('tests',)
# import name -> distributions providing it, for modules not installed here
KNOWN = {'cv2': {'opencv-python', 'opencv-python-headless'}, 'PIL': {'pillow'},
         'yaml': {'pyyaml'}, 'sklearn': {'scikit-learn'}, 'skimage': {'scikit-image'}}


def norm(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def requirement_name(line: str) -> str | None:
    """Distribution name of a requirements line, None for comments/options."""
    line = line.split('#')[0].strip()
    if not line or line.startswith('-'):
        return None
    return norm(re.split(r'[<>=!~\[; ]', line)[0])


def read_requirements(path: Path) -> set[str]:
    names = {requirement_name(line) for line in path.read_text().splitlines()}
    return names - {None}


def imported_modules(root: Path, folders: tuple[str, ...]) -> dict[str, str]:
    """Top-level module name -> first file importing it (absolute imports)."""
    mods: dict[str, str] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob('*.py')):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    mods.setdefault(name.split('.')[0], str(path.relative_to(root)))
    return mods


def local_modules(root: Path) -> set[str]:
    """Modules of the repository itself (packages, scripts, test helpers)."""
    names = {p.name for p in root.iterdir() if p.is_dir()}
    for folder in RUNTIME_DIRS + TEST_DIRS:
        names |= {p.stem for p in (root / folder).rglob('*.py')}
        names |= {p.parent.name for p in (root / folder).rglob('__init__.py')}
    return names


def undeclared(root: Path, folders: tuple[str, ...], declared: set[str]) -> list[str]:
    """'module (file)' for every third-party import no declared name provides."""
    providers = md.packages_distributions()
    local = local_modules(root)
    missing = []
    for mod, where in sorted(imported_modules(root, folders).items()):
        if mod in sys.stdlib_module_names or mod in local or mod == '__future__':
            continue
        dists = {norm(d) for d in providers.get(mod, ())}
        dists |= KNOWN.get(mod, set()) | {norm(mod)}
        if not dists & declared:
            missing.append(f'{mod} ({where})')
    return missing


def setup_kwargs(root: Path) -> dict:
    """The keyword arguments setup.py passes to setuptools.setup."""
    captured: dict = {}
    fake = types.ModuleType('setuptools')       # setuptools need not be installed
    fake.setup = lambda **kw: captured.update(kw)
    fake.find_packages = lambda *args, **kwargs: []
    saved = sys.modules.get('setuptools')
    sys.modules['setuptools'] = fake
    try:
        code = compile((root / 'setup.py').read_text(), 'setup.py', 'exec')
        exec(code, {'__name__': '__main__', '__file__': str(root / 'setup.py')})
    finally:
        if saved is None:
            del sys.modules['setuptools']
        else:
            sys.modules['setuptools'] = saved
    return captured


RUNTIME = read_requirements(ROOT / 'requirements' / 'runtime.txt')
TESTS = read_requirements(ROOT / 'requirements' / 'tests.txt')


def test_runtime_code_imports_only_runtime_requirements():
    assert undeclared(ROOT, RUNTIME_DIRS, RUNTIME) == [], (
        'add these to requirements/runtime.txt')


def test_tests_import_only_declared_requirements():
    assert undeclared(ROOT, TEST_DIRS, RUNTIME | TESTS) == [], (
        'add these to requirements/tests.txt')


def test_test_only_packages_are_not_runtime_requirements():
    assert {'pytest', 'hypothesis'} <= TESTS
    assert not RUNTIME & TESTS


def test_setup_installs_exactly_the_requirement_files():
    kw = setup_kwargs(ROOT)
    assert {requirement_name(r) for r in kw['install_requires']} == RUNTIME
    assert {requirement_name(r) for r in kw['extras_require']['tests']} == TESTS
    # version pins travel too, not only the names
    runtime_lines = [line.split('#')[0].strip() for line in
                     (ROOT / 'requirements' / 'runtime.txt').read_text().splitlines()]
    assert kw['install_requires'] == [line for line in runtime_lines if line]


def test_check_reports_an_undeclared_import(tmp_path):
    """The check itself: an import nothing declares is listed, a declared one is not."""
    for folder in RUNTIME_DIRS + TEST_DIRS:
        (tmp_path / folder).mkdir()
    (tmp_path / 'tests' / 'test_x.py').write_text(
        'import os\nimport numpy as np\nfrom pytest import fixture\n'
        'from helpers_x import y\nimport cv2.data\n')
    (tmp_path / 'tests' / 'helpers_x.py').write_text('y = 1\n')
    (tmp_path / 'a3d_det').joinpath('m.py').write_text('from . import m\n')
    assert undeclared(tmp_path, TEST_DIRS, {'numpy', 'opencv-python-headless'}) == [
        'pytest (tests/test_x.py)']
    assert undeclared(tmp_path, TEST_DIRS,
                      {'numpy', 'pytest', 'opencv-python-headless'}) == []
    assert undeclared(tmp_path, TEST_DIRS, {'pytest', 'opencv-python-headless'}) == [
        'numpy (tests/test_x.py)']


@pytest.mark.parametrize('line, name', [
    ('mmengine>=0.10.4,<0.11', 'mmengine'), ('opencv_python-headless', 'opencv-python-headless'),
    ('pydicom>=2.4  # DICOM', 'pydicom'), ('# comment', None), ('-r runtime.txt', None),
    ('torch[cuda]; python_version>"3"', 'torch')])
def test_requirement_names(line, name):
    assert requirement_name(line) == name
