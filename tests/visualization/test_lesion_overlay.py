"""draw_lesions: Fig. 3 colours, masks, scores, legend, small slices."""
import numpy as np
import pytest
import torch

from a3d_det.visualization import COLORS, draw_lesions, window_image


def _blank(size=64):
    return np.full((size, size), 40, dtype=np.uint8)


def test_ground_truth_true_and_false_positives_have_distinct_colours():
    out = draw_lesions(_blank(), pred_boxes=[[10, 10, 30, 30], [40, 40, 60, 60]],
                       pred_scores=[0.9, 0.8], gt_boxes=[[11, 11, 30, 30], [5, 45, 20, 60]],
                       min_size=64, legend=False)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert tuple(out[30, 20]) == COLORS['true positive']   # bottom edge of the TP
    assert tuple(out[60, 50]) == COLORS['false positive']  # bottom edge of the FP
    assert tuple(out[60, 12]) == COLORS['ground truth']    # the missed lesion
    assert len({COLORS['true positive'], COLORS['false positive'],
                COLORS['ground truth']}) == 3


def test_iou_threshold_decides_true_positive():
    kw = dict(pred_boxes=torch.tensor([[10., 10., 30., 30.]]), pred_scores=torch.tensor([0.5]),
              gt_boxes=np.array([[10, 10, 30, 40]], np.float32), min_size=64, legend=False)
    # IoU with inclusive pixels = 441 / 651 = 0.68
    assert tuple(draw_lesions(_blank(), iou_thr=0.5, **kw)[10, 20]) == COLORS['true positive']
    assert tuple(draw_lesions(_blank(), iou_thr=0.7, **kw)[10, 20]) == COLORS['false positive']


def test_true_positive_uses_the_inclusive_iou_of_froc():
    """Box 0..9 x 0..9 against lesion 0..9 x 0..4: with inclusive pixels
    (DeepLesion's FROC) IoU = 50 / 100 = 0.5, a hit at 0.5; with exclusive
    ones (torchvision) 36 / 81 = 0.44, a miss. The overlay agrees with FROC."""
    from torchvision.ops import box_iou

    from a3d_det.evaluation import froc_curve
    pred, gt = np.array([[0., 0., 9., 9.]]), np.array([[0., 0., 9., 4.]])
    assert float(box_iou(torch.from_numpy(pred), torch.from_numpy(gt))) < 0.5
    sens, _ = froc_curve([np.hstack([pred, [[0.9]]])], [gt], iou_thr=0.5)
    assert sens[-1] == 1.0  # FROC: the lesion is found
    out = draw_lesions(_blank(), pred_boxes=pred + 20, pred_scores=[0.9], gt_boxes=gt + 20,
                       iou_thr=0.5, min_size=64, legend=False)
    assert tuple(out[29, 25]) == COLORS['true positive']  # bottom edge of the prediction


def test_without_ground_truth_predictions_share_one_colour_and_legend():
    out = draw_lesions(_blank(), [[30, 30, 50, 50]], [0.7], min_size=64)
    assert tuple(out[50, 40]) == COLORS['prediction']
    # legend swatch in the top-left corner
    assert (out[:12, :12] == COLORS['prediction']).all(axis=-1).any()


def test_no_detections_returns_the_slice():
    out = draw_lesions(_blank(), np.zeros((0, 4)), np.zeros(0), min_size=64, legend=False)
    assert (out == 40).all()


def test_masks_are_filled():
    masks = np.zeros((1, 64, 64), bool)
    masks[0, 15:25, 15:25] = True
    out = draw_lesions(_blank(), [[10, 10, 30, 30]], [0.9], masks=masks,
                       min_size=64, legend=False)
    inside, outside = out[20, 20].astype(int), out[5, 5].astype(int)
    assert (outside == 40).all()
    assert not (inside == 40).all()
    with pytest.raises(ValueError, match='masks'):
        draw_lesions(_blank(), [[10, 10, 30, 30]], [0.9], masks=masks[:, :32])


def test_small_slice_is_enlarged_with_its_boxes():
    img = np.zeros((16, 16), np.float32) - 1000  # HU, windowed inside
    out = draw_lesions(img, [[2, 2, 8, 8]], [0.9], min_size=256, legend=False)
    assert out.shape == (256, 256, 3)
    assert tuple(out[128, 64]) == COLORS["prediction"]  # bottom edge y2 = 8 * 16
    assert tuple(out[250, 250]) == (0, 0, 0)


def test_bad_inputs():
    with pytest.raises(ValueError, match='scores'):
        draw_lesions(_blank(), [[0, 0, 5, 5]], [0.1, 0.2])
    with pytest.raises(ValueError, match='image'):
        draw_lesions(np.zeros((4, 4, 4), np.uint8), [], [])


def test_window_image():
    hu = np.array([[-2000, -175, 50, 275, 3000]], np.float32)
    np.testing.assert_array_equal(window_image(hu), [[0, 0, 128, 255, 255]])
    np.testing.assert_array_equal(window_image(hu, (-1000, 1000))[0, 2], 134)
