"""``RandomShiftScaleRotate``: the paper's random shift, rescaling and rotation."""
from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

from ...registry import TRANSFORMS
from .geometry import apply_by_chunks, clip_and_drop, masks_hwm, masks_mhw


def affine_boxes(boxes: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Map x1y1x2y2 boxes through a 2x3 affine matrix.

    A box is taken as the axis-aligned ellipse it encloses (lesions are
    roughly elliptical, and DeepLesion boxes enclose the RECIST axes): the
    centre maps through ``mat`` and the half-extents become
    ``sqrt((A00 hw)^2 + (A01 hh)^2)``, ``sqrt((A10 hw)^2 + (A11 hh)^2)``
    (A = mat[:, :2]), the exact box of the mapped ellipse. Unlike the box of
    the four mapped corners, this does not grow a round lesion's box under
    rotation.

    Args:
        boxes: (M, 4) float32.
        mat: (2, 3).

    Returns:
        (M, 4) float32.
    """
    if not len(boxes):
        return boxes.reshape(0, 4).astype(np.float32)
    ctr = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    hw, hh = (boxes[:, 2] - boxes[:, 0]) / 2, (boxes[:, 3] - boxes[:, 1]) / 2
    a = mat[:, :2]
    new_ctr = ctr @ a.T + mat[:, 2]
    nhw = np.sqrt((a[0, 0] * hw) ** 2 + (a[0, 1] * hh) ** 2)
    nhh = np.sqrt((a[1, 0] * hw) ** 2 + (a[1, 1] * hh) ** 2)
    return np.stack([new_ctr[:, 0] - nhw, new_ctr[:, 1] - nhh,
                     new_ctr[:, 0] + nhw, new_ctr[:, 1] + nhh], 1).astype(np.float32)


@TRANSFORMS.register_module()
class RandomShiftScaleRotate:
    """Random shift, scale and rotation about the image centre (Sec. 3.1).

    With probability ``prob``: shift by U(-shift_limit, shift_limit) of the
    width / height, scale by 1 + U(-scale_limit, scale_limit), rotate by
    U(-rotate_limit, rotate_limit) degrees; the output keeps the input size.
    The image is warped bilinearly (border: ``border_value``, default the
    image minimum, i.e. air), masks with nearest neighbour; boxes follow
    (:func:`affine_boxes`), are clipped, and lesions pushed out of view are
    dropped. Draws from numpy's global generator (seeded per worker by
    mmengine's ``randomness`` setting).
    """

    def __init__(self, shift_limit: float = 0.04, scale_limit: float = 0.2,
                 rotate_limit: float = 15.0, prob: float = 0.8,
                 border_value: Optional[float] = None, min_size: float = 2.0) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if shift_limit < 0 or scale_limit < 0 or scale_limit >= 1 or rotate_limit < 0:
            raise ValueError('limits must be >= 0 and scale_limit < 1')
        self.shift_limit = shift_limit
        self.scale_limit = scale_limit
        self.rotate_limit = rotate_limit
        self.prob = prob
        self.border_value = border_value
        self.min_size = min_size

    def __call__(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        dx, dy = np.random.uniform(-self.shift_limit, self.shift_limit, 2)
        scale = 1.0 + np.random.uniform(-self.scale_limit, self.scale_limit)
        angle = np.random.uniform(-self.rotate_limit, self.rotate_limit)
        return self.warp(results, float(dx), float(dy), float(scale), float(angle))

    def warp(self, results: dict, dx: float, dy: float, scale: float, angle: float) -> dict:
        """Apply one shift (fractions of W, H), scale and angle (degrees, counter-clockwise)."""
        img = results['img']
        h, w = img.shape[:2]
        mat = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
        mat[0, 2] += dx * w
        mat[1, 2] += dy * h
        border = float(img.min()) if self.border_value is None else float(self.border_value)
        results['img'] = apply_by_chunks(img, lambda x: cv2.warpAffine(
            x, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
            borderValue=(border,) * 4))
        if results.get('gt_masks') is not None:
            results['gt_masks'] = masks_mhw(apply_by_chunks(
                masks_hwm(results['gt_masks']), lambda x: cv2.warpAffine(
                    x, mat, (w, h), flags=cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=(0,) * 4)))
        if 'gt_bboxes' in results:
            results['gt_bboxes'] = affine_boxes(
                np.asarray(results['gt_bboxes'], np.float32).reshape(-1, 4), mat)
            clip_and_drop(results, self.min_size)
        results['affine_matrix'] = mat
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(shift_limit={self.shift_limit}, '
                f'scale_limit={self.scale_limit}, rotate_limit={self.rotate_limit}, '
                f'prob={self.prob})')
