"""series_report / write_overlays: the detections.json schema and the pictures."""
import json
import os

import cv2
import numpy as np

from a3d_det.apis import series_report, slice_report, write_overlays
from a3d_det.datasets.dicom import CTSeries


def _series():
    rng = np.random.default_rng(0)
    return CTSeries(volume=rng.normal(0, 100, (4, 32, 32)).astype(np.float32),
                    spacing=0.5, pixel_spacing=(0.5, 0.5), slice_interval=2.5,
                    z_mm=np.array([-5.0, -2.5, 0.0, 2.5]),
                    sop_instance_uids=['1.1', '1.2', '1.3', '1.4'],
                    files=['/a/x3', '/a/x1', '/a/x0', '/a/x2'],
                    series_uid='9.9', patient_id='P1', study_uid='8.8')


def _result(index, scores):
    k = len(scores)
    masks = np.zeros((k, 32, 32), bool)
    boxes = np.zeros((k, 4), np.float32)
    for j in range(k):
        boxes[j] = [4 + j, 4, 14 + j, 10]
        masks[j, 4:10, 4 + j:14 + j] = True
    return dict(index=index, boxes=boxes, scores=np.asarray(scores, np.float32), masks=masks)


def test_report_schema_order_and_threshold(tmp_path):
    series = _series()
    # processed out of order; slice 1 has nothing above the threshold
    results = [_result(2, [0.3, 0.9]), _result(1, [0.2]), _result(0, [])]
    entries = [slice_report(series, r, score_thr=0.25) for r in results]
    report = series_report(series, entries, score_thr=0.25, extra=dict(config='c.py'))
    json.dumps(report)  # serialisable
    s = report['series']
    assert s['uid'] == '9.9' and s['patient_id'] == 'P1' and s['study_uid'] == '8.8'
    assert s['spacing'] == 0.5 and s['slice_interval'] == 2.5
    assert s['n_slices'] == 4 and s['n_processed'] == 3
    assert report['config'] == 'c.py' and report['score_thr'] == 0.25
    assert [x['index'] for x in report['slices']] == [0, 1, 2]
    assert [x['z_mm'] for x in report['slices']] == [-5.0, -2.5, 0.0]
    assert [x['sop_instance_uid'] for x in report['slices']] == ['1.1', '1.2', '1.3']
    assert report['slices'][0]['detections'] == [] and report['slices'][1]['detections'] == []
    assert report['slices'][0]['overlay'] is None
    dets = report['slices'][2]['detections']
    assert [d['score'] for d in dets] == [0.9, 0.3]  # best first
    assert dets[0]['box'] == [5.0, 4.0, 15.0, 10.0]
    assert dets[0]['area_mm2'] == 60 * 0.25
    assert 5.0 < dets[0]['long_axis_mm'] < 6.0  # 10 x 6 px mask at 0.5 mm
    assert report['slices'][2]['overlay'] == 'slice_0002.png'


def test_overlays_only_for_slices_with_detections(tmp_path):
    series = _series()
    results = [_result(2, [0.3, 0.9]), _result(1, [0.2]), _result(3, [])]
    written = write_overlays(series, results, 0.25, str(tmp_path))
    assert [os.path.basename(p) for p in written] == ['slice_0002.png']
    img = cv2.imread(written[0])
    assert img.shape == (256, 256, 3)  # 32 px enlarged for legibility
