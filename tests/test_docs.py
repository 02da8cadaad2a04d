"""The user documentation: README size and links, paths that exist, no lab notes.

Covers README.md, docs/*.md, configs/*/README.md and data/README.md, and
checks that CI runs exactly the README's install and test commands.
"""
from __future__ import annotations

import glob
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'


def doc_files(root: Path = ROOT) -> list[Path]:
    names = ['README.md', 'data/README.md', *glob.glob('docs/*.md', root_dir=root),
             *glob.glob('configs/*/README.md', root_dir=root)]
    return sorted(root / n for n in names if (root / n).is_file())


DOCS = doc_files()
DOC_IDS = [str(p.relative_to(ROOT)) for p in DOCS]


def strip_code(text: str) -> str:
    """Markdown without fenced code blocks (links inside them are not links)."""
    return re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    s = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return s.replace(' ', '-')


def anchors(path: Path) -> set[str]:
    heads = re.findall(r'^#+\s+(.*)$', strip_code(path.read_text()), flags=re.M)
    return {slug(h) for h in heads}


def broken_links(path: Path) -> list[str]:
    """Relative links (and #anchors into markdown) of ``path`` that do not resolve."""
    bad = []
    for target in re.findall(r'\]\(([^)\s]+)(?:\s+"[^"]*")?\)', strip_code(path.read_text())):
        if re.match(r'[a-z]+:', target):          # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition('#')
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
            bad.append(target)
    return bad


PATH_RE = re.compile(r'(?<![\w/.\-])((?:configs|tools|a3d_det)/[\w./{},<>*\-]*)')


def expand_braces(text: str) -> list[str]:
    """Shell brace expansion of comma lists: a{b,c}d -> abd, acd."""
    m = re.search(r'\{([^{}]*,[^{}]*)\}', text)
    if not m:
        return [text]
    return [x for alt in m.group(1).split(',')
            for x in expand_braces(text[:m.start()] + alt + text[m.end():])]


def missing_paths(path: Path, root: Path = ROOT) -> list[str]:
    """``configs/...``, ``tools/...`` and ``a3d_det/...`` paths named that do not exist.

    Comma lists in braces are expanded; other placeholders (``{method}``,
    ``<method>``, ``*``) must match at least one file.
    """
    bad = []
    for token in PATH_RE.findall(path.read_text()):
        for name in expand_braces(token.rstrip('.,:;')):
            pattern = re.sub(r'\{[^{}]*\}|<[^<>]*>', '*', name)
            if not glob.glob(pattern, root_dir=root):
                bad.append(name)
    return bad


LAB_NOTES = re.compile('|'.join([
    r'\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:UTC|GMT|CET|h\b)',   # 11:24 UTC
    r'\b20\d\d-\d\d-\d\d\b',                              # 2026-11-25
    r'≈\s*\d{1,2}:\d{2}\b',
    r'\bload\s+av(?:erage|g)',                            # load average 6-12
    r'\bother (?:jobs?|engineers|processes|users|load)\b',
    r'\bshared with\b', r'\bwhile (?:the machine was )?shared\b',
    r'\bissue\s*#?\d+\b', r'\bthe issue(?:\'s)?\b',       # internal issue references
    r'\boutliers?\b', r'\bdid not make it\b',
]), flags=re.I)


def lab_notes(text: str) -> list[str]:
    return [m.group(0) for m in LAB_NOTES.finditer(text)]


def fenced_lines(text: str, heading: str) -> list[str]:
    """Command lines of the first code block after ``## heading``."""
    section = text.split(f'\n## {heading}\n', 1)[1]
    block = re.search(r'```\w*\n(.*?)```', section, flags=re.S).group(1)
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith('#')]


# --- the README --------------------------------------------------------------

def test_readme_is_one_screen_and_links_the_docs():
    text = README.read_text()
    assert len(text) <= 12_000, len(text)
    linked = set(re.findall(r'\]\((docs/[\w\-]+\.md)\)', text))
    assert len(linked) >= 5
    pages = {f'docs/{p}.md' for p in ('get_started', 'fusion_operators', 'data', 'training',
                                      'evaluation', 'inference', 'benchmarks', 'reproduction')}
    assert pages <= linked
    every_page = {f'docs/{p.name}' for p in (ROOT / 'docs').glob('*.md')}
    assert every_page <= linked, 'link every docs/ page from the README'
    assert all((ROOT / p).is_file() for p in pages)


def test_licence_and_citation_exist():
    assert 'Apache License' in (ROOT / 'LICENSE').read_text()
    assert 'Version 2.0' in (ROOT / 'LICENSE').read_text()
    cff = (ROOT / 'CITATION.cff').read_text()
    assert re.search(r'^cff-version: 1\.2\.0$', cff, flags=re.M)
    assert re.search(r'^license: Apache-2\.0$', cff, flags=re.M)
    assert '@inproceedings{' in README.read_text()


def test_ci_runs_exactly_the_readme_install_and_test_lines():
    text = README.read_text()
    install, test = fenced_lines(text, 'Install'), fenced_lines(text, 'Test')
    assert len(install) == 1 and len(test) == 1
    ci = [ln.strip() for ln in (ROOT / '.ci' / 'run').read_text().splitlines()]
    commands = [ln for ln in ci if ln and not ln.startswith(('#', 'set ', 'cd '))]
    assert commands == install + test


def test_readme_install_line_installs_the_test_requirements():
    install = fenced_lines(README.read_text(), 'Install')[0]
    extras = re.search(r'\.\[([\w,]+)\]', install)
    assert extras and 'tests' in extras.group(1).split(',')


# --- every page --------------------------------------------------------------

@pytest.mark.parametrize('path', DOCS, ids=DOC_IDS)
def test_relative_links_resolve(path):
    assert broken_links(path) == []


@pytest.mark.parametrize('path', DOCS, ids=DOC_IDS)
def test_named_configs_and_tools_exist(path):
    assert missing_paths(path) == []


@pytest.mark.parametrize('path', DOCS, ids=DOC_IDS)
def test_no_lab_notebook(path):
    assert lab_notes(path.read_text()) == []


def test_every_method_folder_has_a_readme_linked_from_the_readme():
    text = README.read_text()
    for folder in sorted(p.parent for p in ROOT.glob('configs/*/*.py')
                         if p.parent.name != '_base_'):
        rel = f'{folder.relative_to(ROOT)}/README.md'
        assert (ROOT / rel).is_file()
        assert f']({rel})' in text, rel


# --- the checks themselves -----------------------------------------------------

def test_checks_catch_what_they_are_for(tmp_path):
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'configs' / 'a3d').mkdir(parents=True)
    (tmp_path / 'configs' / 'a3d' / 'a3d_x_3slice.py').write_text('')
    page = tmp_path / 'docs' / 'page.md'
    page.write_text('# Title\n\n## Sub part\n[ok](page.md) [ok](#sub-part) [web](https://x.org/y)\n'
                    '[bad](missing.md) [bad](page.md#nowhere)\n'
                    '```\n[not a link](nowhere.md)\n```\n'
                    'Run `configs/a3d/a3d_x_{3,7}slice.py` or configs/{method}/a3d_x_3slice.py, '
                    'see tools/train.py.\n')
    assert broken_links(page) == ['missing.md', 'page.md#nowhere']
    assert missing_paths(page, tmp_path) == ['configs/a3d/a3d_x_7slice.py', 'tools/train.py']
    assert lab_notes('measured 2026-11-25 11:24 UTC, load average 6') == [
        '2026-11-25', '11:24 UTC', 'load average']
    assert lab_notes('while other jobs ran (see issue 14)') == ['other jobs', 'issue 14']
    assert lab_notes('median of 5 rounds, 1.22x, `x[10:20]`') == []
    assert expand_braces('a{b,c}d{1,2}') == ['abd1', 'abd2', 'acd1', 'acd2']


# --- the paper's numbers, copied into the README and the method READMEs --------

def paper_table2() -> dict[tuple[str, int], list[str]]:
    """(operator, slices) -> the seven sensitivities of docs/paper_tables.csv."""
    import csv
    with open(ROOT / 'docs' / 'paper_tables.csv', newline='') as f:
        return {(r['operator'], int(r['slices'])): [r[k] for k in (
            'sens@0.5', 'sens@1', 'sens@2', 'sens@4', 'sens@8', 'sens@16', 'avg[0.5-4]')]
            for r in csv.DictReader(f) if r['table'] == '2'}


def test_readme_table2_matches_the_paper():
    paper = paper_table2()
    rows = re.findall(r'^\|.*?\| `(\w+Conv)` \| \**([\d.]+)\** \| \**([\d.]+)\** \|',
                      README.read_text(), flags=re.M)
    assert len(rows) == 7
    for op, avg3, avg7 in rows:
        assert (float(avg3), float(avg7)) == (float(paper[op, 3][-1]), float(paper[op, 7][-1]))


@pytest.mark.parametrize('folder', ['no_fusion', 'i3d', 'p3d', 'acs', 'tsm', 'alignshift', 'a3d'])
def test_method_readme_paper_rows_match_the_paper(folder):
    fusion = re.search(r"fusion\.type = '(\w+)'", (ROOT / 'configs' / folder / 'README.md').read_text())
    assert fusion, 'the README names its operator'
    paper = paper_table2()
    rows = re.findall(r'^\| paper \| (\d) \|(.*)\|$',
                      (ROOT / 'configs' / folder / 'README.md').read_text(), flags=re.M)
    assert sorted(int(d) for d, _ in rows) == [3, 7]
    for d, cells in rows:
        values = [float(c) for c in cells.split('|')]
        assert values == [float(v) for v in paper[fusion.group(1), int(d)]]


# --- checkpoints the docs name are ones their config writes ---------------------

CKPT_RE = re.compile(r'work_dirs/(\w+)/(iter|epoch)_(\d+)\.pth')


def written_by_config(config: Path, kind: str, n: int) -> bool:
    """Does training ``config`` as shipped save ``{kind}_{n}.pth``?"""
    from mmengine.config import Config
    cfg = Config.fromfile(str(config))
    hook = cfg.default_hooks.checkpoint
    by_epoch = hook.get('by_epoch', True)
    last = cfg.train_cfg.get('max_epochs' if by_epoch else 'max_iters')
    if (kind == 'epoch') != by_epoch or not 0 < n <= last:
        return False
    return n % hook.get('interval', 1) == 0 or (n == last and hook.get('save_last', True))


def test_named_checkpoints_are_written_by_their_config():
    seen = 0
    for path in DOCS:
        for name, kind, n in CKPT_RE.findall(path.read_text()):
            configs = list(ROOT.glob(f'configs/*/{name}.py'))
            if not configs:
                continue                      # a --work-dir of the reader's choice
            seen += 1
            assert written_by_config(configs[0], kind, int(n)), (
                f'{path.relative_to(ROOT)}: {name} does not write {kind}_{n}.pth')
    assert seen >= 3


def test_checkpoint_check_itself():
    default = ROOT / 'configs' / 'a3d' / 'a3d_densenet121_3slice_synthetic.py'
    assert written_by_config(default, 'iter', 1000)
    assert written_by_config(default, 'iter', 500)
    assert not written_by_config(default, 'iter', 400)
    assert not written_by_config(default, 'epoch', 20)
    table2 = ROOT / 'configs' / 'a3d' / 'a3d_densenet121_7slice_deeplesion.py'
    assert written_by_config(table2, 'epoch', 20)
    assert not written_by_config(table2, 'epoch', 24)
