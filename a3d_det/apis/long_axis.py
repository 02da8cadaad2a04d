"""Lesion size from a predicted mask: the long axis in mm.

DeepLesion annotates each lesion with RECIST diameters (the long axis is the
longest in-plane diameter); the detector's masks let inference report the
same quantity for its detections: the longest distance between two points of
the mask outline.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ['mask_long_axis_mm']


def mask_long_axis_mm(mask: np.ndarray,
                      pixel_spacing: float | Sequence[float] | None,
                      box: Sequence[float] | None = None) -> float | None:
    """Longest diameter of a lesion mask (RECIST long axis), in mm.

    The diameter is measured between pixel centres of the convex hull of the
    mask's outer contour, plus one pixel (a one-pixel mask is one pixel
    long). With an empty mask the box diagonal stands in when ``box`` is
    given.

    Args:
        mask: (H, W) bool mask of one lesion.
        pixel_spacing: mm/px, one number or (row, column) spacing; ``None``
            when unknown.
        box: (4,) x1y1x2y2 of the lesion, used when the mask is empty.

    Returns:
        The long axis in mm, or ``None`` when the spacing is unknown or both
        the mask and the box are empty.
    """
    if pixel_spacing is None:
        return None
    row_mm, col_mm = _row_col(pixel_spacing)
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        points = cv2.convexHull(np.concatenate(contours, axis=0)).reshape(-1, 2)
        # (x, y) pixel indices -> mm; the farthest pair of hull points
        xy = points.astype(np.float64) * (col_mm, row_mm)
        d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(np.argmax(d2), d2.shape)
        direction = (points[i] - points[j]).astype(np.float64)
        norm = np.linalg.norm(direction)
        direction = direction / norm if norm > 0 else np.array([1.0, 0.0])
        # + one pixel along that direction: both end pixels count in full
        return float(np.sqrt(d2[i, j]) + np.hypot(direction[0] * col_mm,
                                                  direction[1] * row_mm))
    if box is not None:
        x1, y1, x2, y2 = (float(v) for v in box)
        w, h = max(x2 - x1, 0.0) * col_mm, max(y2 - y1, 0.0) * row_mm
        return float(np.hypot(w, h)) if w > 0 or h > 0 else None
    return None


def _row_col(pixel_spacing: float | Sequence[float]) -> tuple[float, float]:
    if np.ndim(pixel_spacing) == 0:
        return float(pixel_spacing), float(pixel_spacing)
    row, col = (float(v) for v in pixel_spacing)
    return row, col
