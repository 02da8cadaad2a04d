"""The FROC dump file: round trip and clear errors."""
import json

import numpy as np
import pytest

from a3d_det.evaluation.froc_dump import (FROCDumpError, image_record,
                                          load_froc_dump, save_froc_dump)


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    recs = [image_record('000001_01_01/010.png',
                         rng.uniform(0, 500, (3, 4)).astype(np.float32),
                         rng.random(3).astype(np.float32),
                         rng.uniform(0, 500, (2, 4)).astype(np.float32),
                         slice_interval=5.0, gt_diameters_mm=[12.5, 40.],
                         gt_lesion_types=[5, -1]),
            image_record('b.png', np.zeros((0, 4)), [], np.zeros((0, 4)))]
    path = tmp_path / 'sub' / 'dump.json'
    save_froc_dump(str(path), recs)
    back = load_froc_dump(str(path))
    assert len(back) == 2
    for a, b in zip(recs, back):
        for key in ('pred_bboxes', 'pred_scores', 'gt_bboxes'):
            np.testing.assert_array_equal(a[key], b[key])
    assert back[0]['gt_lesion_types'].tolist() == [5, -1]
    assert back[0]['slice_interval'] == 5.0
    assert back[1]['gt_diameters_mm'] is None
    assert back[1]['pred_bboxes'].shape == (0, 4)
    assert not list(path.parent.glob('*.tmp'))


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FROCDumpError, match='nope.json: no such file'):
        load_froc_dump(str(tmp_path / 'nope.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{"format": ')
    with pytest.raises(FROCDumpError, match='bad.json: not a valid JSON'):
        load_froc_dump(str(bad))
    bad.write_text(json.dumps({'images': []}))
    with pytest.raises(FROCDumpError, match='not a FROC dump'):
        load_froc_dump(str(bad))
    bad.write_text(json.dumps({'format': 'a3d_det.froc_dump', 'version': 1,
                               'images': [{'pred_bboxes': [[0, 0, 1, 1]],
                                           'pred_scores': [],
                                           'gt_bboxes': []}]}))
    with pytest.raises(FROCDumpError, match='image 0 is malformed'):
        load_froc_dump(str(bad))


def test_record_checks_shapes():
    with pytest.raises(ValueError, match="'x.png': pred_bboxes"):
        image_record('x.png', np.zeros((2, 4)), [0.5], np.zeros((0, 4)))
    with pytest.raises(ValueError, match='gt_diameters_mm has 1 values for 2'):
        image_record('x.png', [], [], np.zeros((2, 4)), gt_diameters_mm=[3.])
