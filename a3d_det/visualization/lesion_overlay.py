"""Detection overlays on CT slices, in the style of the paper's Fig. 3.

Fig. 3 of the A3D paper shows DeepLesion key slices with the ground truth,
true positives and false positives in distinct colours. :func:`draw_lesions`
draws exactly that (plus optional predicted masks and scores) on a windowed
slice, and a legend naming the colours.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from a3d_det.evaluation.froc import pairwise_overlaps

__all__ = ['draw_lesions', 'window_image', 'DISPLAY_WINDOW', 'COLORS']

# Soft-tissue display window (width 450 HU, level 50 HU): lesions in the
# abdomen, mediastinum and lung nodules (grey on black lung) are visible.
DISPLAY_WINDOW: tuple[float, float] = (-175.0, 275.0)

# BGR colours of the Fig. 3 legend; 'prediction' is used without ground truth.
COLORS = {
    'ground truth': (0, 200, 0),
    'true positive': (0, 220, 255),
    'false positive': (0, 0, 255),
    'prediction': (0, 140, 255),
}


def window_image(hu: np.ndarray,
                 window: tuple[float, float] = DISPLAY_WINDOW) -> np.ndarray:
    """Map Hounsfield units to a displayable grey image.

    Args:
        hu: (H, W) array in HU.
        window: (low, high) HU mapped to 0 and 255.

    Returns:
        (H, W) uint8.
    """
    low, high = float(window[0]), float(window[1])
    if not high > low:
        raise ValueError(f'window must be (low, high) with high > low, got {window}')
    img = (np.asarray(hu, dtype=np.float32) - low) * (255.0 / (high - low))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _as_array(x, shape_tail: tuple[int, ...], dtype) -> np.ndarray:
    if x is None:
        return np.zeros((0, *shape_tail), dtype=dtype)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _to_bgr(image: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        if image.dtype != np.uint8:
            image = window_image(image, window)
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image.copy()
    raise ValueError('image must be (H, W) grey (uint8, or HU to window) or '
                     f'(H, W, 3) BGR uint8, got {image.dtype} {image.shape}')


def draw_lesions(image: np.ndarray,
                 pred_boxes,
                 pred_scores,
                 gt_boxes=None,
                 masks=None,
                 iou_thr: float = 0.5,
                 window: tuple[float, float] = DISPLAY_WINDOW,
                 min_size: int = 256,
                 legend: bool = True) -> np.ndarray:
    """Draw ground truth and predictions on one slice (Fig. 3 of the paper).

    With ground truth, a prediction is a true positive when its IoU with some
    ground-truth box is at least ``iou_thr``, else a false positive (IoU with
    inclusive pixels, ``x2 - x1 + 1``, as FROC counts hits:
    :func:`~a3d_det.evaluation.froc.pairwise_overlaps`); the three
    kinds get distinct colours (:data:`COLORS`) and a legend. Without ground
    truth all predictions share the 'prediction' colour. Scores are written at
    each predicted box; masks are filled half-transparent in the box colour.

    Small slices are enlarged by an integer factor ``k`` (nearest neighbour)
    so that the longer side reaches ``min_size`` and the text stays legible;
    boxes are scaled with it.

    Args:
        image: (H, W) uint8 windowed slice, (H, W) float HU (windowed with
            ``window``), or (H, W, 3) BGR uint8.
        pred_boxes: (N, 4) x1y1x2y2 in ``image`` pixels (array or tensor).
        pred_scores: (N,) scores.
        gt_boxes: (M, 4) x1y1x2y2 ground truth, or ``None`` (no TP/FP split).
        masks: (N, H, W) bool predicted masks, or ``None``.
        iou_thr: IoU at which a prediction counts as a true positive.
        window: HU window for float input.
        min_size: enlarge until max(H, W) * k >= min_size.
        legend: draw the colour legend.

    Returns:
        (k H, k W, 3) BGR uint8 image.
    """
    canvas = _to_bgr(image, window)
    h, w = canvas.shape[:2]
    boxes = _as_array(pred_boxes, (4,), np.float32).reshape(-1, 4)
    scores = _as_array(pred_scores, (), np.float32).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f'{len(boxes)} boxes but {len(scores)} scores')
    gts = None if gt_boxes is None else _as_array(gt_boxes, (4,), np.float32).reshape(-1, 4)
    mask_arr = None
    if masks is not None:
        mask_arr = _as_array(masks, (h, w), bool)
        if mask_arr.shape != (len(boxes), h, w):
            raise ValueError(f'masks must be ({len(boxes)}, {h}, {w}), '
                             f'got {mask_arr.shape}')

    # 1. Kind of each prediction (Fig. 3: true / false positive).
    if gts is None:
        kinds = ['prediction'] * len(boxes)
    else:
        tp = np.zeros(len(boxes), dtype=bool)
        if len(boxes) and len(gts):
            tp = pairwise_overlaps(boxes, gts).max(axis=1) >= iou_thr
        kinds = ['true positive' if t else 'false positive' for t in tp]

    # 2. Enlarge small slices so boxes and text stay legible.
    k = max(1, math.ceil(min_size / max(h, w)))
    if k > 1:
        canvas = cv2.resize(canvas, (w * k, h * k), interpolation=cv2.INTER_NEAREST)
    thickness = max(1, round(max(h, w) * k / 400))
    font_scale = max(0.35, max(h, w) * k / 1400)

    # 3. Masks under the boxes, half transparent.
    if mask_arr is not None and len(mask_arr):
        overlay = canvas.copy()
        for m, kind in zip(mask_arr, kinds):
            if k > 1:
                m = np.kron(m, np.ones((k, k), dtype=bool))
            overlay[m] = COLORS[kind]
        canvas = cv2.addWeighted(overlay, 0.35, canvas, 0.65, 0)
        for m, kind in zip(mask_arr, kinds):
            if k > 1:
                m = np.kron(m, np.ones((k, k), dtype=bool))
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, COLORS[kind], 1)

    def rect(box: np.ndarray, color: Sequence[int]) -> tuple[int, int]:
        x1, y1, x2, y2 = (np.asarray(box, dtype=np.float64) * k).round().astype(int)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
        return x1, y1

    # 4. Ground truth, then predictions with their scores (lowest score first,
    # so the most confident box ends on top).
    if gts is not None:
        for box in gts:
            rect(box, COLORS['ground truth'])
    for i in np.argsort(scores, kind='stable'):
        color = COLORS[kinds[i]]
        x1, y1 = rect(boxes[i], color)
        text = f'{scores[i]:.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = y1 - 2 if y1 - th - 2 >= 0 else y1 + th + 2
        tx = min(max(x1, 0), canvas.shape[1] - tw)
        cv2.putText(canvas, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    color, 1, cv2.LINE_AA)

    # 5. Legend (top-left), naming only the kinds that can appear.
    if legend:
        names = (['ground truth', 'true positive', 'false positive']
                 if gts is not None else ['prediction'])
        _draw_legend(canvas, names, font_scale)
    return canvas


def _draw_legend(canvas: np.ndarray, names: Sequence[str], font_scale: float) -> None:
    pad = max(2, int(round(6 * font_scale)))
    sizes = [cv2.getTextSize(n, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0] for n in names]
    line_h = max(s[1] for s in sizes) + pad
    swatch = line_h - pad
    width = swatch + 3 * pad + max(s[0] for s in sizes)
    height = line_h * len(names) + pad
    width, height = min(width, canvas.shape[1]), min(height, canvas.shape[0])
    region = canvas[:height, :width]
    region[:] = (region.astype(np.float32) * 0.4).astype(np.uint8)
    for j, name in enumerate(names):
        y = pad + j * line_h
        cv2.rectangle(canvas, (pad, y), (pad + swatch, y + swatch), COLORS[name], -1)
        cv2.putText(canvas, name, (2 * pad + swatch, y + swatch),
                    cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
