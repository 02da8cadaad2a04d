"""RECIST geometry: the ellipse through a lesion's long and short axes."""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np


def recist_axes(recist: Sequence[float]) -> tuple[float, float, float, float, float] | None:
    """Ellipse parameters of a RECIST annotation.

    Args:
        recist: (8,) 0-based ``x1 y1 x2 y2`` (long axis) ``x3 y3 x4 y4`` (short axis).

    Returns:
        ``(cx, cy, half_long, half_short, angle_deg)``, or ``None`` when the
        annotation is degenerate (non-finite or a long axis under 1 px).
    """
    p = np.asarray(recist, dtype=np.float64).reshape(-1)
    if p.size != 8 or not np.all(np.isfinite(p)):
        return None
    long_len = math.hypot(p[2] - p[0], p[3] - p[1])
    short_len = math.hypot(p[6] - p[4], p[7] - p[5])
    if long_len < 1.0:
        return None
    # The centre: between the midpoints of the two axes (they cross near it).
    cx = (p[0] + p[2] + p[4] + p[6]) / 4
    cy = (p[1] + p[3] + p[5] + p[7]) / 4
    angle = math.degrees(math.atan2(p[3] - p[1], p[2] - p[0]))
    return cx, cy, long_len / 2, short_len / 2, angle


def recist_ellipse_mask(recist: Sequence[float], shape: tuple[int, int],
                        box: Sequence[float] | None = None) -> np.ndarray:
    """Bool (H, W) ellipse through the RECIST axes, clipped to ``box``.

    A degenerate RECIST gives the ellipse inscribed in ``box`` (or an empty
    mask without a box). Axes are at least half a pixel, so a mask is never
    empty when its box is inside the image.

    Args:
        recist: (8,) 0-based RECIST endpoints.
        shape: (H, W).
        box: optional (4,) 0-based x1y1x2y2 the mask must stay in.
    """
    h, w = shape
    mask = np.zeros((h, w), dtype=np.uint8)
    axes = recist_axes(recist)
    if axes is None:
        if box is None:
            return mask.astype(bool)
        x1, y1, x2, y2 = (float(v) for v in box)
        axes = ((x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2, 0.0)
    cx, cy, a, b, ang = axes
    s = 16  # cv2 fixed-point shift 4
    cv2.ellipse(mask, (int(round(cx * s)), int(round(cy * s))),
                (int(round(max(a, 0.5) * s)), int(round(max(b, 0.5) * s))),
                ang, 0, 360, 1, thickness=-1, lineType=cv2.LINE_8, shift=4)
    if box is not None:
        mask &= box_mask(box, shape)
    return mask.astype(bool)


def box_mask(box: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W): 1 on the pixels whose centres lie in the box (at least one pixel)."""
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    c0, c1 = max(int(math.ceil(x1)), 0), min(int(math.floor(x2)), w - 1)
    r0, r1 = max(int(math.ceil(y1)), 0), min(int(math.floor(y2)), h - 1)
    if c1 < c0:
        c0 = c1 = min(max(int(round((x1 + x2) / 2)), 0), w - 1)
    if r1 < r0:
        r0 = r1 = min(max(int(round((y1 + y2) / 2)), 0), h - 1)
    out = np.zeros((h, w), dtype=np.uint8)
    out[r0:r1 + 1, c0:c1 + 1] = 1
    return out
