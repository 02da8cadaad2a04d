"""The DeepLesion FROC core: hand-made cases with known answers, and equality
with the per-prediction loop reference on random cases."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a3d_det.evaluation.froc import (box_overlaps, froc_curve, interp_sens,
                                     sens_at_fp)
from a3d_det.evaluation.froc_reference import (froc_curve_reference,
                                               sens_at_fp_reference)

BOTH = pytest.mark.parametrize('curve_fn', [froc_curve, froc_curve_reference],
                               ids=['vectorised', 'loop'])
BOTH_SENS = pytest.mark.parametrize('sens_fn',
                                    [sens_at_fp, sens_at_fp_reference],
                                    ids=['vectorised', 'loop'])


def P(*rows):
    """(N, 5) predictions."""
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def G(*rows):
    """(M, 4) lesions."""
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


# --------------------------------------------------------------- overlaps
def test_iou_uses_inclusive_pixels():
    # 10x10 inside 10x20 pixels: IoU 100/200 = 0.5 exactly (0.47 without +1)
    ov = box_overlaps(G([0, 0, 9, 9]), G([0, 0, 9, 19]))
    assert ov[0] == 0.5
    assert box_overlaps(G([0, 0, 9, 9]), G([10, 10, 20, 20]))[0] == 0.0
    # single-pixel boxes coincide: IoU 1
    assert box_overlaps(G([3, 3, 3, 3]), G([3, 3, 3, 3]))[0] == 1.0


def test_iobb_is_intersection_over_predicted_box():
    pred, gt = G([0, 0, 9, 9]), G([0, 0, 29, 29])
    assert box_overlaps(pred, gt, 'iobb')[0] == 1.0
    assert box_overlaps(pred, gt, 'iou')[0] == pytest.approx(100 / 900)
    # gt covers 3 of the 10 columns of the prediction: IoBB 0.3
    assert box_overlaps(pred, G([0, 0, 2, 9]), 'iobb')[0] == pytest.approx(.3)
    with pytest.raises(ValueError, match='criterion'):
        box_overlaps(pred, gt, 'dice')


# --------------------------------------------------------- hand-made curves
@BOTH
def test_duplicate_hits_are_not_false_positives(curve_fn):
    preds = [P([0, 0, 9, 9, .9], [0, 0, 9, 9, .8], [200, 200, 209, 209, .5]),
             P([100, 100, 109, 109, .7], [20, 20, 29, 29, .6])]
    gts = [G([0, 0, 9, 9]), G([20, 20, 29, 29])]
    sens, fps = curve_fn(preds, gts)
    # order .9 hit, .8 duplicate hit (no FP), .7 FP, .6 hit, .5 FP
    np.testing.assert_array_equal(sens, [.5, .5, .5, 1, 1])
    np.testing.assert_array_equal(fps, [0, 0, .5, .5, 1])


@BOTH_SENS
def test_shared_fp_value_takes_the_last_point(sens_fn):
    preds = [P([0, 0, 9, 9, .9], [200, 200, 209, 209, .5]),
             P([100, 100, 109, 109, .7], [20, 20, 29, 29, .6])]
    gts = [G([0, 0, 9, 9]), G([20, 20, 29, 29])]
    # points (0.5, 0.5) then (0.5, 1.0): at 0.5 FPs the last one, 1.0
    np.testing.assert_array_equal(sens_fn(preds, gts, (0.5, 1)), [1, 1])


@BOTH
def test_one_prediction_finds_two_lesions(curve_fn):
    preds = [P([0, 0, 9, 9, .9], [300, 300, 320, 320, .1])]
    gts = [G([0, 0, 9, 9], [0, 0, 9, 10])]  # IoU 1 and 100/110
    sens, fps = curve_fn(preds, gts)
    np.testing.assert_array_equal(sens, [1, 1])
    np.testing.assert_array_equal(fps, [0, 1])


@BOTH_SENS
def test_images_without_lesions_or_predictions(sens_fn):
    preds = [P([0, 0, 9, 9, .9], [50, 50, 59, 59, .8]),  # no lesion: 2 FPs
             P([0, 0, 9, 9, .7]),                        # finds its lesion
             P()]                                        # nothing
    gts = [G(), G([0, 0, 9, 9]), G()]
    sens, fps = froc_curve(preds, gts)
    np.testing.assert_array_equal(sens, [0, 0, 1])
    np.testing.assert_allclose(fps, [1 / 3, 2 / 3, 2 / 3])
    # 0.5 lies between the first two points (both 0); 1 is beyond the end
    np.testing.assert_array_equal(sens_fn(preds, gts, (0.5, 1, 16)), [0, 1, 1])


@BOTH_SENS
def test_images_without_predictions_count_in_fps_per_image(sens_fn):
    preds = [P([50, 50, 59, 59, .9], [0, 0, 9, 9, .8]), P(), P(), P()]
    gts = [G([0, 0, 9, 9]), G([0, 0, 9, 9]), G(), G()]
    sens, fps = froc_curve(preds, gts)
    np.testing.assert_array_equal(fps, [.25, .25])
    np.testing.assert_array_equal(sens, [0, .5])
    # 0.25 FPs/image reached with 1 of the 2 lesions found
    np.testing.assert_array_equal(sens_fn(preds, gts, (.25, .5)), [.5, .5])


@BOTH_SENS
def test_levels_below_inside_and_beyond_the_curve(sens_fn):
    preds = [P([100, 0, 109, 9, .9], [0, 0, 9, 9, .8], [120, 0, 129, 9, .7],
               [20, 0, 29, 9, .6], [140, 0, 149, 9, .5])]
    gts = [G([0, 0, 9, 9], [20, 0, 29, 9])]
    sens, fps = froc_curve(preds, gts)
    np.testing.assert_array_equal(fps, [1, 1, 2, 2, 3])
    np.testing.assert_array_equal(sens, [0, .5, .5, 1, 1])
    # below the first point: its sensitivity (np.interp); beyond 3: the last
    np.testing.assert_array_equal(
        sens_fn(preds, gts, (0.5, 1, 1.5, 2, 4, 16)), [0, .5, .5, 1, 1, 1])


@BOTH_SENS
def test_no_predictions_at_all_gives_zeros(sens_fn):
    gts = [G([0, 0, 9, 9]), G()]
    np.testing.assert_array_equal(sens_fn([P(), P()], gts), np.zeros(6))
    sens, fps = froc_curve([P(), P()], gts)
    assert sens.shape == fps.shape == (0,)


@BOTH_SENS
def test_no_lesions_at_all_gives_zeros(sens_fn):
    preds = [P([0, 0, 9, 9, .9]), P([0, 0, 9, 9, .3])]
    np.testing.assert_array_equal(sens_fn(preds, [G(), G()]), np.zeros(6))


@BOTH_SENS
def test_iobb_criterion_with_its_default_threshold(sens_fn):
    preds = [P([0, 0, 9, 9, .9])]  # small box inside a large lesion
    gts = [G([0, 0, 29, 29])]
    assert sens_fn(preds, gts, (1,))[0] == 0.0
    assert sens_fn(preds, gts, (1,), criterion='iobb')[0] == 1.0
    # IoBB 0.3 reaches the default 0.3 but not an explicit 0.31
    gts = [G([0, 0, 2, 9])]
    assert sens_fn(preds, gts, (1,), criterion='iobb')[0] == 1.0
    assert sens_fn(preds, gts, (1,), iou_thr=.31, criterion='iobb')[0] == 0.0


@BOTH
def test_group_counts_its_lesions_and_other_hits_are_not_fps(curve_fn):
    preds = [P([20, 20, 29, 29, .9], [200, 200, 209, 209, .8],
               [0, 0, 9, 9, .7])]
    gts = [G([0, 0, 9, 9], [20, 20, 29, 29])]
    sens_a, fps_a = curve_fn(preds, gts, gt_in_group=[np.array([True, False])])
    np.testing.assert_array_equal(sens_a, [0, 0, 1])
    np.testing.assert_array_equal(fps_a, [0, 1, 1])  # .9 hit group B: no FP
    sens_b, fps_b = curve_fn(preds, gts, gt_in_group=[np.array([False, True])])
    np.testing.assert_array_equal(sens_b, [1, 1, 1])
    np.testing.assert_array_equal(fps_b, fps_a)


def test_equal_scores_rank_in_image_order():
    preds = [P([100, 0, 109, 9, .5]), P([0, 0, 9, 9, .5])]
    gts = [G(), G([0, 0, 9, 9])]
    sens, fps = froc_curve(preds, gts)
    np.testing.assert_array_equal(fps, [.5, .5])  # image 0's FP first
    np.testing.assert_array_equal(sens, [0, 1])


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match='2 images of predictions but 1'):
        froc_curve([P(), P()], [G()])
    with pytest.raises(ValueError, match=r'pred_boxes\[1\] must have shape'):
        froc_curve([P(), np.zeros((2, 4))], [G(), G()])
    with pytest.raises(ValueError, match=r'gt_boxes\[0\]'):
        froc_curve([P()], [np.zeros((1, 5))])
    with pytest.raises(ValueError, match='gt_in_group'):
        froc_curve([P([0, 0, 9, 9, .9])], [G([0, 0, 9, 9])],
                   gt_in_group=[np.array([True, False])])
    with pytest.raises(ValueError, match='criterion'):
        sens_at_fp([P()], [G()], criterion='giou')
    with pytest.raises(ValueError, match='threshold'):
        sens_at_fp([P()], [G()], iou_thr=0)


# ------------------------------------------------ equality with the loop
@st.composite
def detections(draw):
    """Few images on a 16x16 pixel grid: overlaps and score ties are common."""
    num_images = draw(st.integers(1, 5))
    coord = st.integers(0, 15)
    preds, gts, groups = [], [], []

    def boxes(n):
        a = np.array(draw(st.lists(st.tuples(coord, coord, coord, coord),
                                   min_size=n, max_size=n)),
                     dtype=np.float64).reshape(-1, 4)
        # x1 <= x2, y1 <= y2
        return np.hstack([np.minimum(a[:, :2], a[:, 2:]),
                          np.maximum(a[:, :2], a[:, 2:])])

    for _ in range(num_images):
        m, n = draw(st.integers(0, 3)), draw(st.integers(0, 6))
        gts.append(boxes(m))
        scores = np.array(draw(st.lists(st.sampled_from([.1, .5, .7, .9]),
                                        min_size=n, max_size=n)))
        preds.append(np.hstack([boxes(n), scores.reshape(-1, 1)]))
        groups.append(np.array(draw(st.lists(st.booleans(), min_size=m,
                                             max_size=m)), dtype=bool))
    return preds, gts, groups


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(detections(), st.sampled_from(['iou', 'iobb']),
       st.sampled_from([None, .1, .5, .9]), st.booleans())
def test_equals_per_prediction_loop(data, criterion, thr, use_groups):
    preds, gts, groups = data
    group = groups if use_groups else None
    sens, fps = froc_curve(preds, gts, thr, criterion, group)
    ref_sens, ref_fps = froc_curve_reference(preds, gts, thr, criterion, group)
    np.testing.assert_array_equal(sens, ref_sens)
    np.testing.assert_array_equal(fps, ref_fps)
    levels = (0.1, 0.5, 1, 2, 4, 8, 16)
    np.testing.assert_array_equal(
        sens_at_fp(preds, gts, levels, thr, criterion, group),
        sens_at_fp_reference(preds, gts, levels, thr, criterion, group))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1,
                max_size=12),
       st.lists(st.floats(0, 6, allow_nan=False), min_size=1, max_size=6))
def test_interpolation_matches_np_interp(steps, levels):
    """Any non-decreasing curve with repeated FP values, levels inside it."""
    fps = np.cumsum([s[0] for s in steps]) / 4.0
    sens = np.cumsum([s[1] for s in steps]) / 40.0
    levels = np.array(levels)
    inside = levels <= fps.max()
    got = interp_sens(sens, fps, levels)
    np.testing.assert_array_equal(got[inside],
                                  np.interp(levels[inside], fps, sens))
    np.testing.assert_array_equal(got[~inside], sens[-1])


def test_pairwise_overlaps_pairs_every_box_with_every_lesion():
    from a3d_det.evaluation.froc import pairwise_overlaps
    rng = np.random.default_rng(3)
    boxes = np.hstack([xy := rng.uniform(0, 50, (4, 2)), xy + rng.uniform(1, 30, (4, 2))])
    gts = np.hstack([xy := rng.uniform(0, 50, (3, 2)), xy + rng.uniform(1, 30, (3, 2))])
    for criterion in ('iou', 'iobb'):
        table = pairwise_overlaps(boxes, gts, criterion)
        assert table.shape == (4, 3)
        for i in range(4):
            for j in range(3):
                assert table[i, j] == box_overlaps(boxes[i:i + 1], gts[j:j + 1], criterion)[0]
    assert pairwise_overlaps(boxes, np.zeros((0, 4))).shape == (4, 0)
