"""Markdown tables in the layout of the A3D paper's Tables 2 and 3, our runs
next to the paper's numbers (``docs/paper_tables.csv``, percent).

A run is a JSON file of ``tools/test.py --json-out`` (fractions:
``{"sens@0.5": ..., "sens@16": ..., "avg[0.5-4]": ...}``). Name it either
explicitly, ``--run NAME:SLICES:PATH`` (NAME a method such as ``a3d`` /
``No Fusion`` or any label), or let the method and slices be read from the
path, ``--runs work_dirs/a3d_densenet121_7slice_deeplesion/test.json``
(``{method}_densenet121_{D}slice_*`` in the file name or a parent folder)::

    python tools/analysis/results_table.py --table 2 \
        --run a3d:7:work_dirs/a3d7/test.json --runs work_dirs/*/test.json
"""
from __future__ import annotations

import argparse
import csv
import json
import os.path as osp
import re
from dataclasses import dataclass

from a3d_det.evaluation.froc_keys import FROC_KEYS
from a3d_det.utils.cli import run_cli
from a3d_det.utils.errors import UserInputError

COLUMNS = FROC_KEYS
HEADER = ('0.5', '1', '2', '4', '8', '16', 'Avg.')
#: config folder names -> the paper's method names
METHODS = {'no_fusion': 'No Fusion', 'i3d': 'I3D', 'p3d': 'P3D', 'acs': 'ACS',
           'tsm': 'TSM', 'alignshift': 'AlignShift', 'a3d': 'A3D'}
DEFAULT_CSV = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', 'docs',
                       'paper_tables.csv')
NAME_RE = re.compile(r'(?P<method>[a-z0-9_]+?)_densenet121_(?P<slices>\d+)slice')


#: A mistake in the arguments or input files: one line, exit 2 (``run_cli``).
UserError = UserInputError


@dataclass
class Row:
    method: str
    slices: int
    values: list[float | None]  # percent, COLUMNS order
    venue: str = ''
    ours: bool = False


def _norm(name: str) -> str:
    return re.sub(r'[^a-z0-9]', '', name.lower())


def method_name(name: str) -> str:
    """The paper's spelling of a method (``no_fusion`` -> ``No Fusion``);
    unknown names are returned unchanged."""
    known = {_norm(k): v for k, v in METHODS.items()}
    known.update({_norm(v): v for v in METHODS.values()})
    return known.get(_norm(name), name)


def read_paper(path: str) -> dict[int, list[Row]]:
    """Rows of ``paper_tables.csv`` per table number (values in percent)."""
    tables: dict[int, list[Row]] = {}
    try:
        with open(path, newline='') as f:
            for line, rec in enumerate(csv.DictReader(f), start=2):
                try:
                    row = Row(method=rec['method'], slices=int(rec['slices']),
                              venue=rec['venue'] or '',
                              values=[float(rec[c]) if rec[c] else None
                                      for c in COLUMNS])
                    tables.setdefault(int(rec['table']), []).append(row)
                except (KeyError, TypeError, ValueError) as e:
                    raise UserError(f'{path}: line {line} is malformed '
                                    f'({e!r})') from None
    except OSError as e:
        raise UserError(f'{path}: cannot read paper table ({e.strerror})') \
            from None
    return tables


def read_run(path: str, method: str, slices: int) -> Row:
    """One of our runs (fractions in the file, percent in the row)."""
    try:
        with open(path) as f:
            metrics = json.load(f)
    except OSError as e:
        raise UserError(f'{path}: cannot read run ({e.strerror})') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(metrics, dict) or not any(c in metrics for c in COLUMNS):
        raise UserError(f'{path}: no FROC metrics (expected keys '
                        f'{", ".join(COLUMNS)})')
    values = []
    for c in COLUMNS:
        v = metrics.get(c)
        if v is not None and not (isinstance(v, (int, float))
                                  and 0.0 <= v <= 1.0):
            raise UserError(f'{path}: {c} = {v!r} is not a fraction in '
                            '[0, 1]')
        values.append(None if v is None else 100.0 * v)
    return Row(method=method_name(method), slices=slices, values=values,
               ours=True)


def parse_run_spec(spec: str) -> Row:
    """``NAME:SLICES:PATH`` -> a run row."""
    parts = spec.split(':', 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[0]:
        raise UserError(f'--run {spec!r}: expected NAME:SLICES:PATH, e.g. '
                        'a3d:7:work_dirs/a3d/test.json')
    return read_run(parts[2], parts[0], int(parts[1]))


def run_from_path(path: str) -> Row:
    """A run whose method and slices are in its path."""
    for part in reversed(osp.normpath(osp.abspath(path)).split(osp.sep)):
        m = NAME_RE.search(part)
        if m:
            return read_run(path, m['method'], int(m['slices']))
    raise UserError(f'{path}: no {{method}}_densenet121_{{D}}slice in the path;'
                    ' name it with --run NAME:SLICES:PATH')


def _fmt(values: list[float | None]) -> list[str]:
    return ['-' if v is None else f'{v:.2f}' for v in values]


def table2(paper: list[Row], runs: list[Row]) -> str:
    """Table 2: fusion operators per number of slices, ours after the paper."""
    lines = ['| Slices | Method | ' + ' | '.join(HEADER) + ' |',
             '|---|---|' + '---|' * len(HEADER)]
    for slices in sorted({r.slices for r in paper} | {r.slices for r in runs}):
        done: set[int] = set()
        for p in (r for r in paper if r.slices == slices):
            lines.append(f'| {slices} | {p.method} (paper) | ' +
                         ' | '.join(_fmt(p.values)) + ' |')
            for i, r in enumerate(runs):
                if r.slices == slices and r.method == p.method:
                    lines.append(f'| {slices} | **{r.method} (ours)** | ' +
                                 ' | '.join(_fmt(r.values)) + ' |')
                    done.add(i)
        for i, r in enumerate(runs):
            if r.slices == slices and i not in done:
                lines.append(f'| {slices} | **{r.method} (ours)** | ' +
                             ' | '.join(_fmt(r.values)) + ' |')
    return '\n'.join(lines)


def table3(paper: list[Row], runs: list[Row]) -> str:
    """Table 3: state of the art, our runs appended."""
    lines = ['| Method | Venue | Slices | ' + ' | '.join(HEADER) + ' |',
             '|---|---|---|' + '---|' * len(HEADER)]
    for p in paper:
        lines.append(f'| {p.method} | {p.venue} | {p.slices} | ' +
                     ' | '.join(_fmt(p.values)) + ' |')
    for r in runs:
        lines.append(f'| **{r.method} (ours)** | | {r.slices} | ' +
                     ' | '.join(_fmt(r.values)) + ' |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Markdown tables in the A3D paper's Table 2/3 layout, "
                    "our runs next to the paper's numbers (sensitivity %).")
    parser.add_argument('--runs', nargs='+', default=[],
                        help='run JSONs named {method}_densenet121_{D}slice_*'
                             ' (file or parent folder)')
    parser.add_argument('--run', action='append', default=[],
                        metavar='NAME:SLICES:PATH', help='a run, named')
    parser.add_argument('--table', choices=('2', '3', 'all'), default='all')
    parser.add_argument('--paper-csv', default=DEFAULT_CSV,
                        help='the paper numbers (default docs/paper_tables.csv)')
    args = parser.parse_args(argv)
    paper = read_paper(args.paper_csv)
    runs = [parse_run_spec(s) for s in args.run] + [run_from_path(p) for p in args.runs]
    out = []
    if args.table in ('2', 'all'):
        out += ['Table 2: 3D context fusion operators, sensitivity (%) at FPs '
                'per image', '', table2(paper.get(2, []), runs), '']
    if args.table in ('3', 'all'):
        out += ['Table 3: comparison with the state of the art, sensitivity '
                '(%) at FPs per image', '', table3(paper.get(3, []), runs), '']
    print('\n'.join(out).rstrip())
    return 0


if __name__ == '__main__':
    run_cli(main)
