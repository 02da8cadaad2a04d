"""tools/infer.py on clinical input (compressed, enhanced, NIfTI) and its
lesion outputs (lesions in detections.json, label volume, lesion pictures)."""
from __future__ import annotations

import json
import os
import re

import cv2
import nibabel as nib
import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless

from a3d_det.apis import link_lesions
from tests.helpers import ct_files, tiny_detector
from tests.helpers.tools import load_tool


infer = load_tool('infer.py')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    cfg, ckpt, _ = tiny_detector.write_tiny_detector(str(tmp_path_factory.mktemp('tiny')))
    return cfg, ckpt


def run(tiny, inp, out, capsys, *extra):
    try:
        infer.run_cli(lambda: infer.main([tiny[0], tiny[1], str(inp), '--out-dir', str(out),
                                          '--device', 'cpu', *extra]))
        code = 0
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    report = None
    if code == 0:
        report = json.loads((out / 'detections.json').read_text())
    return code, captured, report


def detections_of(report):
    """Per slice: z and detections (what must agree between input forms)."""
    return [(s['index'], s['z_mm'], s['detections']) for s in report['slices']]


def test_lesions_masks_and_pictures_for_dicom(tiny, tmp_path, capsys):
    out = tmp_path / 'out'
    code, cap, report = run(tiny, ct_files.CT5N, out, capsys, '--score-thr', '0.3',
                            '--save-masks')
    assert code == 0, cap.err
    lesions = report['lesions']
    assert lesions, 'the random tiny detector scores some boxes >= 0.3'
    # the lesions are link_lesions of the reported slices
    assert lesions == link_lesions(report['slices'], slice_interval=2.5)
    assert [les['id'] for les in lesions] == list(range(1, len(lesions) + 1))
    # every reported detection carries its lesion id; members match
    for s in report['slices']:
        for d in s['detections']:
            les = lesions[d['lesion'] - 1]
            assert s['index'] in les['slices'] and d['score'] <= les['score']
    for les in lesions:
        members = [d for s in report['slices'] for d in s['detections']
                   if d['lesion'] == les['id']]
        assert len(members) == len(les['slices'])
        assert les['volume_mm3'] == pytest.approx(sum(d['area_mm2'] for d in members) * 2.5)
        img = cv2.imread(str(out / f'lesion_{les["id"]:03d}.png'))
        assert img is not None and img.shape[0] == 160
    # the table and the speed
    assert re.search(r'id\s+slices\s+z range \(mm\)\s+long axis \(mm\)\s+volume \(mm3\)'
                     r'\s+score', cap.out)
    assert re.search(r'5 slice\(s\) in [\d.]+ s \([\d.]+ s per slice\)', cap.out)
    # the label volume: DICOM geometry, lesion ids where their masks are
    img = nib.load(str(out / 'lesions.nii.gz'))
    assert report['mask_volume'] == 'lesions.nii.gz'
    _, _, lps = ct_files.ct5n_dicom()
    np.testing.assert_allclose(img.affine, np.diag([-1, -1, 1, 1]) @ lps, atol=1e-4)
    label = np.asarray(img.dataobj).transpose(2, 1, 0)     # (slice, row, column)
    assert label.shape == (5, 16, 16)
    ids = set(np.unique(label)) - {0}
    assert ids <= {les['id'] for les in lesions} and ids
    for les in lesions:
        k = np.flatnonzero((label == les['id']).any(axis=(1, 2)))
        assert set(k) <= set(les['slices'])
    # lesion 1 (best score) is never painted over: its key slice's mask pixels
    key = lesions[0]
    (d,) = [d for s in report['slices'] if s['index'] == key['key_index']
            for d in s['detections'] if d['lesion'] == 1]
    area_px = d['area_mm2'] / 0.488281 ** 2
    assert (label[key['key_index']] == 1).sum() == pytest.approx(area_px, abs=1)


@pytest.mark.slow
def test_jpeg2000_twin_gives_the_same_detections(tiny, tmp_path, capsys):
    ct_files.twin_series(str(tmp_path / 'plain'), str(tmp_path / 'j2k'), JPEG2000Lossless)
    results = []
    for name in ('plain', 'j2k'):
        code, cap, report = run(tiny, tmp_path / name, tmp_path / f'out_{name}', capsys,
                                '--score-thr', '0.2')
        assert code == 0, cap.err
        results.append(report)
    plain, j2k = results
    assert detections_of(plain) == detections_of(j2k)
    assert plain['lesions'] == j2k['lesions']
    assert sum(len(s['detections']) for s in plain['slices']) > 0


@pytest.mark.slow
def test_jpeg_lossless_ct_slice_is_processed(tiny, tmp_path, capsys):
    path = tmp_path / 'jl.dcm'
    ct_files.write_jpeg_lossless(ct_files.CT_SMALL, str(path))
    code, cap, jl = run(tiny, path, tmp_path / 'o1', capsys, '--score-thr', '0.2')
    assert code == 0, cap.err
    code, cap, plain = run(tiny, ct_files.CT_SMALL, tmp_path / 'o2', capsys,
                           '--score-thr', '0.2')
    assert code == 0, cap.err
    assert detections_of(jl) == detections_of(plain) and jl['slices'][0]['detections']


@pytest.mark.slow
def test_enhanced_ct_gives_the_single_frame_detections(tiny, tmp_path, capsys):
    ct_files.ct5n_as_enhanced(str(tmp_path / 'enh'), [[0, 1, 2], [3, 4]])
    code, cap, enh = run(tiny, tmp_path / 'enh', tmp_path / 'o1', capsys, '--score-thr', '0.3')
    assert code == 0, cap.err
    code, cap, classic = run(tiny, ct_files.CT5N, tmp_path / 'o2', capsys, '--score-thr', '0.3')
    assert detections_of(enh) == detections_of(classic)
    # CT5N's sorted file names run from superior to inferior
    assert [(s['file'], s['frame']) for s in enh['slices']] == [
        ('enh1.dcm', 2), ('enh1.dcm', 1), ('enh0.dcm', 3), ('enh0.dcm', 2), ('enh0.dcm', 1)]
    assert all('frame' not in s for s in classic['slices'])


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['dcm2niix_rows_flipped', 'ras_plus'])
def test_nifti_gives_the_dicom_detections_and_masks_on_its_grid(variant, tiny, tmp_path,
                                                                 capsys):
    cases, _ = ct_files.variants()
    data, affine = cases[variant]
    path = ct_files.save_nifti(data, affine, str(tmp_path / 'ct.nii.gz'), -1024.0)
    code, cap, nii = run(tiny, path, tmp_path / 'o1', capsys, '--score-thr', '0.3',
                         '--save-masks')
    assert code == 0, cap.err
    code, cap, dcm = run(tiny, ct_files.CT5N, tmp_path / 'o2', capsys, '--score-thr', '0.3',
                         '--save-masks')
    assert detections_of(nii) == detections_of(dcm)
    assert nii['lesions'] == dcm['lesions']
    img = nib.load(str(tmp_path / 'o1' / 'lesions.nii.gz'))
    assert img.shape == data.shape
    np.testing.assert_allclose(img.affine, affine, atol=1e-5)
    # the same labels at the same places in the world as the DICOM mask volume
    ref = nib.load(str(tmp_path / 'o2' / 'lesions.nii.gz'))
    lab, ref_lab = np.asarray(img.dataobj), np.asarray(ref.dataobj)
    assert lab.sum() > 0 and lab.sum() == ref_lab.sum()
    for voxel in np.argwhere(lab > 0)[:50]:
        world = img.affine @ np.r_[voxel, 1]
        ref_voxel = np.rint(np.linalg.solve(ref.affine, world)[:3]).astype(int)
        assert ref_lab[tuple(ref_voxel)] == lab[tuple(voxel)]


@pytest.mark.parametrize('case, pattern', [
    ('4d', 'expected a 3D CT volume'),
    ('link_iou', '--link-iou'),
    ('link_gap', '--link-gap'),
])
def test_bad_input_one_line(case, pattern, tiny, tmp_path, capsys):
    inp, extra = ct_files.CT5N, []
    if case == '4d':
        inp = tmp_path / 'ts.nii.gz'
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 3), np.int16), np.eye(4)), str(inp))
    elif case == 'link_iou':
        extra = ['--link-iou', '1.5']
    else:
        extra = ['--link-gap', '-1']
    code, cap, _ = run(tiny, inp, tmp_path / 'o', capsys, *extra)
    assert code == 2
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'Traceback' not in cap.err
    assert re.search(pattern, lines[0]), lines[0]
    assert not os.path.exists(tmp_path / 'o' / 'detections.json')
