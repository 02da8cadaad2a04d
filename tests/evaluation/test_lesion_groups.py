"""Breakdown groups: which lesions belong to which group."""
import numpy as np
import pytest

from a3d_det.evaluation.lesion_groups import lesion_groups


def _images():
    return [dict(file_name='a.png', gt_bboxes=np.zeros((3, 4)),
                 slice_interval=1.25, gt_diameters_mm=np.array([5., 10., 30.]),
                 gt_lesion_types=np.array([5, 4, -1])),
            dict(file_name='b.png', gt_bboxes=np.zeros((1, 4)),
                 slice_interval=5.0, gt_diameters_mm=np.array([29.9]),
                 gt_lesion_types=np.array([5])),
            dict(file_name='c.png', gt_bboxes=np.zeros((0, 4)),
                 slice_interval=2.0, gt_diameters_mm=np.zeros(0),
                 gt_lesion_types=np.zeros(0))]


def _as_lists(groups):
    return {k: [m.tolist() for m in v] for k, v in groups.items()}


def test_slice_interval_groups_by_image():
    g = _as_lists(lesion_groups('slice_interval', _images()))
    assert g == {'interval<=2mm': [[True] * 3, [False], []],
                 'interval>2mm': [[False] * 3, [True], []]}


def test_size_bins_are_half_open():
    g = _as_lists(lesion_groups('size', _images()))
    assert g['size<10mm'] == [[True, False, False], [False], []]
    assert g['size10-30mm'] == [[False, True, False], [True], []]
    assert g['size>=30mm'] == [[False, False, True], [False], []]


def test_types_use_deeplesion_codes_and_skip_unknown():
    g = _as_lists(lesion_groups('type', _images()))
    assert g['type=lung'] == [[True, False, False], [True], []]
    assert g['type=liver'] == [[False, True, False], [False], []]
    assert len(g) == 8
    # the unknown (-1) lesion is in no type group
    assert not any(v[0][2] for v in g.values())


def test_missing_or_misaligned_fields_are_named():
    images = _images()
    images[1]['gt_diameters_mm'] = None
    with pytest.raises(ValueError, match=r"b.png.*'gt_diameters_mm'"):
        lesion_groups('size', images)
    images = _images()
    images[0]['gt_lesion_types'] = np.array([1])
    with pytest.raises(ValueError, match='1 values for 3 lesions'):
        lesion_groups('type', images)
    with pytest.raises(ValueError, match='breakdown must be one of'):
        lesion_groups('organ', images)
