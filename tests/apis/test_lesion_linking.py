"""link_lesions on hand-made per-slice detections."""
from __future__ import annotations

import pytest

from a3d_det.apis import assign_lesions, link_lesions


def det(box, score, area=10.0, axis=5.0):
    return dict(box=list(box), score=score, area_mm2=area, long_axis_mm=axis)


def series(dets_by_index, n=None, interval=2.5, z0=-10.0):
    """Entries for slices 0..n-1 (z = z0 + i * interval)."""
    n = n if n is not None else max(dets_by_index) + 1
    return [dict(index=i, z_mm=z0 + i * interval, detections=dets_by_index.get(i, []))
            for i in range(n)]


A = (10, 10, 30, 30)
A_SHIFTED = (12, 11, 32, 31)         # IoU with A = 342 / 458 ~ 0.75
B = (60, 60, 80, 90)                 # far from A


def test_overlapping_boxes_on_consecutive_slices_are_one_lesion():
    s = series({2: [det(A, 0.6, area=20, axis=6)], 3: [det(A_SHIFTED, 0.9, area=30, axis=8)],
                4: [det(A, 0.7, area=10, axis=4)]}, n=6)
    (lesion,) = link_lesions(s)
    assert lesion['id'] == 1
    assert lesion['slices'] == [2, 3, 4]
    assert lesion['key_index'] == 3
    assert lesion['box'] == list(A_SHIFTED)
    assert lesion['score'] == pytest.approx(0.9)
    assert lesion['long_axis_mm'] == pytest.approx(8)
    # sum of areas (20 + 30 + 10 mm2) x the median slice interval 2.5 mm
    assert lesion['volume_mm3'] == pytest.approx(60 * 2.5)
    assert lesion['z_range_mm'] == pytest.approx([-5.0, 0.0])


def test_gap_bridging_follows_max_gap():
    s = series({1: [det(A, 0.9)], 3: [det(A, 0.8)]}, n=5)      # slice 2 missed
    assert [les['slices'] for les in link_lesions(s, max_gap=1)] == [[1, 3]]
    assert [les['slices'] for les in link_lesions(s, max_gap=0)] == [[1], [3]]
    far = series({1: [det(A, 0.9)], 4: [det(A, 0.8)]}, n=6)    # two slices missed
    assert [les['slices'] for les in link_lesions(far, max_gap=1)] == [[1], [4]]
    assert [les['slices'] for les in link_lesions(far, max_gap=2)] == [[1, 4]]


def test_chain_grows_from_the_best_detection_both_ways():
    s = series({0: [det(A, 0.2)], 1: [det(A, 0.3)], 2: [det(A, 0.95)],
                3: [det(A, 0.4)], 4: [det(A, 0.1)]})
    (lesion,) = link_lesions(s)
    assert lesion['slices'] == [0, 1, 2, 3, 4] and lesion['key_index'] == 2


def test_separate_places_and_one_detection_per_slice():
    s = series({
        0: [det(A, 0.5), det(B, 0.95)],
        1: [det(A, 0.9), det(A_SHIFTED, 0.8), det(B, 0.4)],   # two on A's place
        2: [det(A, 0.3)],
    })
    lesions, members = assign_lesions(s)
    # ids by best score: B (0.95), then A (0.9), then the second detection at A
    assert [les['score'] for les in lesions] == pytest.approx([0.95, 0.9, 0.8])
    assert [les['slices'] for les in lesions] == [[0, 1], [0, 1, 2], [1]]
    assert [les['id'] for les in lesions] == [1, 2, 3]
    for les, group in zip(lesions, members):
        assert len({i for i, _ in group}) == len(group)   # one per slice
    assert members[1] == [(0, 0), (1, 0), (2, 0)]
    assert members[2] == [(1, 1)]
    assert members[0] == [(0, 1), (1, 2)]


def test_iou_threshold():
    # IoU of (0, 0, 10, 10) and (5, 0, 15, 10) is 50 / 150 = 1/3
    s = series({0: [det((0, 0, 10, 10), 0.9)], 1: [det((5, 0, 15, 10), 0.8)]})
    assert len(link_lesions(s, iou_thr=0.33)) == 1
    assert len(link_lesions(s, iou_thr=0.34)) == 2
    # touching boxes do not overlap
    s = series({0: [det((0, 0, 10, 10), 0.9)], 1: [det((10, 0, 20, 10), 0.8)]})
    assert len(link_lesions(s, iou_thr=0.0)) == 2


def test_slice_interval_median_or_given_and_unknown_sizes():
    s = [dict(index=0, z_mm=0.0, detections=[det(A, 0.9, area=4)]),
         dict(index=1, z_mm=5.0, detections=[det(A, 0.8, area=6)]),
         dict(index=2, z_mm=10.0, detections=[]),
         dict(index=3, z_mm=25.0, detections=[])]          # one odd step
    (lesion,) = link_lesions(s)
    assert lesion['volume_mm3'] == pytest.approx(10 * 5.0)   # median of 5, 5, 15
    (lesion,) = link_lesions(s, slice_interval=1.25)
    assert lesion['volume_mm3'] == pytest.approx(10 * 1.25)
    s[0]['detections'][0]['area_mm2'] = None
    s[1]['detections'][0]['long_axis_mm'] = None
    (lesion,) = link_lesions(s)
    assert lesion['volume_mm3'] is None and lesion['long_axis_mm'] == pytest.approx(5)


def test_index_gaps_count_not_list_positions():
    # only slices 10 and 13 were processed: 2 slices apart in the series
    s = [dict(index=10, z_mm=20.0, detections=[det(A, 0.9)]),
         dict(index=13, z_mm=27.5, detections=[det(A, 0.8)])]
    assert len(link_lesions(s, max_gap=1)) == 2
    assert len(link_lesions(s, max_gap=2)) == 1


def test_empty_and_bad_arguments():
    assert link_lesions([]) == []
    assert link_lesions(series({}, n=3)) == []
    with pytest.raises(ValueError, match='max_gap'):
        link_lesions(series({0: [det(A, 0.5)]}), max_gap=-1)
