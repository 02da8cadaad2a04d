"""tools/infer.py end to end on pydicom's CT series and a tiny random detector."""
import json
import os
import os.path as osp
import random
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.helpers import tiny_detector
from tests.helpers.tools import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
INFER = osp.join(REPO, 'tools', 'infer.py')
CT_SMALL = get_testdata_file('CT_small.dcm')
MR_SMALL = get_testdata_file('MR_small.dcm')
CT5N = osp.join(osp.dirname(CT_SMALL), 'dicomdirtests', '98892001', 'CT5N')


infer = load_tool('infer.py')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    cfg, ckpt, _ = tiny_detector.write_tiny_detector(str(tmp_path_factory.mktemp('tiny')))
    return cfg, ckpt


@pytest.fixture
def ct5n(tmp_path):
    """CT5N copied under random names in a shuffled order."""
    d = tmp_path / 'series'
    d.mkdir()
    srcs = sorted(os.listdir(CT5N))
    random.Random(1).shuffle(srcs)
    for i, s in enumerate(srcs):
        shutil.copy(osp.join(CT5N, s), d / f'IM{random.Random(i).randint(0, 99999):05d}')
    (d / 'notes.txt').write_text('not DICOM')
    return str(d)


def _run_main(argv, capsys):
    """Run the tool in-process as its ``__main__`` does (``run_cli(main)``);
    return (exit status, stderr)."""
    try:
        infer.run_cli(lambda: infer.main(argv))
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_dicom_series_end_to_end(tiny, ct5n, tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, INFER, tiny[0], tiny[1], ct5n, '--out-dir', str(out),
         '--device', 'cpu', '--score-thr', '0'],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'skipped 1 non-DICOM' in proc.stderr
    report = json.loads((out / 'detections.json').read_text())
    dss = sorted((pydicom.dcmread(osp.join(CT5N, f)) for f in os.listdir(CT5N)),
                 key=lambda ds: float(ds.ImagePositionPatient[2]))
    s = report['series']
    assert s['uid'] == str(dss[0].SeriesInstanceUID)
    assert s['patient_id'] == str(dss[0].PatientID)
    assert s['study_uid'] == str(dss[0].StudyInstanceUID)
    assert s['n_slices'] == 5 and s['slice_interval'] == pytest.approx(2.5)
    assert s['spacing'] == pytest.approx(0.488281)
    slices = report['slices']
    assert [x['index'] for x in slices] == [0, 1, 2, 3, 4]
    assert [x['sop_instance_uid'] for x in slices] == [str(ds.SOPInstanceUID) for ds in dss]
    assert np.all(np.diff([x['z_mm'] for x in slices]) == pytest.approx(2.5))
    for x in slices:
        # score threshold 0: every slice of a random detector has detections
        assert x['detections'], x
        for d in x['detections']:
            x1, y1, x2, y2 = d['box']
            assert 0 <= x1 < x2 <= 16 and 0 <= y1 < y2 <= 16  # original pixels
            assert 0 <= d['score'] <= 1
            assert d['long_axis_mm'] is not None and d['long_axis_mm'] > 0
        img = cv2.imread(str(out / x['overlay']))
        assert img is not None and img.shape == (256, 256, 3)


def test_slices_threshold_and_empty_entries(tiny, ct5n, tmp_path, capsys):
    out = tmp_path / 'out'
    code, err = _run_main([tiny[0], tiny[1], ct5n, '--out-dir', str(out),
                           '--slices', '3', '1', '--score-thr', '1.01'], capsys)
    assert code == 0, err
    report = json.loads((out / 'detections.json').read_text())
    # only the chosen slices, ordered along z, present with empty lists
    assert [x['index'] for x in report['slices']] == [1, 3]
    assert all(x['detections'] == [] and x['overlay'] is None for x in report['slices'])
    assert not [f for f in os.listdir(out) if f.endswith('.png')]


def test_single_dicom_file(tiny, tmp_path, capsys):
    code, err = _run_main([tiny[0], tiny[1], CT_SMALL, '--out-dir', str(tmp_path),
                           '--score-thr', '0'], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / 'detections.json').read_text())
    assert report['series']['n_slices'] == 1 and report['series']['shape'] == [128, 128]
    assert report['series']['slice_interval'] == pytest.approx(5.0)  # SliceThickness
    assert report['slices'][0]['detections']
    assert max(d['box'][2] for d in report['slices'][0]['detections']) <= 128


def test_png_folder(tiny, tmp_path, capsys):
    d = tmp_path / '000001_01_01'
    d.mkdir()
    hu = np.random.default_rng(0).integers(-1000, 1000, (3, 24, 20))
    for i, s in enumerate(hu):
        cv2.imwrite(str(d / f'{i + 1:03d}.png'), (s + 32768).astype(np.uint16))
    out = tmp_path / 'out'
    code, err = _run_main([tiny[0], tiny[1], str(d), '--out-dir', str(out),
                           '--slice-interval', '5', '--spacing', '0.8',
                           '--score-thr', '0'], capsys)
    assert code == 0, err
    report = json.loads((out / 'detections.json').read_text())
    assert report['series']['n_slices'] == 3 and report['series']['spacing'] == 0.8
    assert [x['file'] for x in report['slices']] == ['001.png', '002.png', '003.png']
    assert [x['z_mm'] for x in report['slices']] == [0.0, 5.0, 10.0]


def _several_series(tmp_path):
    d = tmp_path / 'mixed'
    shutil.copytree(CT5N, d)
    shutil.copy(CT_SMALL, d / 'other.dcm')
    return str(d)


@pytest.mark.parametrize('case, pattern', [
    ('empty', 'empty'),
    ('mr', 'MR, not CT'),
    ('several', 'holds 2 series.*--series'),
    ('no_dicom', 'no readable DICOM'),
    ('no_pixels', 'no pixel data'),
    ('png_no_interval', '--slice-interval'),
    ('bad_slices', '--slices'),
    ('no_checkpoint', 'checkpoint not found'),
    ('no_series', 'no series with UID 1.2.3'),
])
def test_bad_input_one_line_and_nonzero_exit(case, pattern, tiny, tmp_path, capsys):
    cfg, ckpt = tiny
    extra = []
    if case == 'empty':
        inp = tmp_path / 'empty'
        inp.mkdir()
    elif case == 'mr':
        inp = MR_SMALL
    elif case in ('several', 'no_series'):
        inp = _several_series(tmp_path)
        if case == 'no_series':
            extra = ['--series', '1.2.3']
    elif case == 'no_dicom':
        inp = tmp_path / 'txt'
        inp.mkdir()
        (inp / 'a.txt').write_text('hello')
    elif case == 'no_pixels':
        inp = tmp_path / 'np'
        shutil.copytree(CT5N, inp)
        name = sorted(os.listdir(inp))[0]
        ds = pydicom.dcmread(str(inp / name))
        del ds.PixelData
        ds.save_as(str(inp / name))
    elif case == 'png_no_interval':
        inp = tmp_path / 'png'
        inp.mkdir()
        cv2.imwrite(str(inp / '001.png'), np.full((8, 8), 32768, np.uint16))
    elif case == 'bad_slices':
        inp, extra = CT5N, ['--slices', '2', '9']
    elif case == 'no_checkpoint':
        inp, ckpt = CT5N, str(tmp_path / 'missing.pth')
    code, err = _run_main([cfg, ckpt, str(inp), '--out-dir', str(tmp_path / 'o')] + extra,
                          capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    assert 'Traceback' not in err
    assert re.search(pattern, lines[0]), lines[0]
