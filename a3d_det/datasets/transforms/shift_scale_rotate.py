"""``RandomShiftScaleRotate``: the paper's random shift, rescaling and rotation."""
from __future__ import annotations


import cv2
import numpy as np

from a3d_det.datasets.transforms.geometry import (apply_by_chunks, clip_and_drop, masks_hwm,
                                                  masks_mhw)
from a3d_det.registry import TRANSFORMS

#: ``interpolation`` option -> OpenCV flag (image; masks are always nearest).
INTERPOLATIONS = {'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC}
#: ``border_mode`` option -> OpenCV border (image and masks alike).
BORDER_MODES = {'constant': cv2.BORDER_CONSTANT, 'reflect101': cv2.BORDER_REFLECT_101}
BOX_MODES = ('ellipse', 'corners')


def affine_boxes(boxes: np.ndarray, mat: np.ndarray, mode: str = 'ellipse') -> np.ndarray:
    """Map x1y1x2y2 boxes (pixel-edge coordinates) through a 2x3 affine
    matrix of pixel-centre coordinates (OpenCV's ``warpAffine`` convention).

    ``mode='ellipse'``: a box is taken as the axis-aligned ellipse it
    encloses (lesions are roughly elliptical, and DeepLesion boxes enclose
    the RECIST axes): the centre maps through ``mat`` and the half-extents
    become ``sqrt((A00 hw)^2 + (A01 hh)^2)``, ``sqrt((A10 hw)^2 + (A11 hh)^2)``
    (A = mat[:, :2]), the exact box of the mapped ellipse; a round lesion's
    box does not grow under rotation.

    ``mode='corners'``: the box of the four mapped corners (the published
    pipeline's albumentations rule); a square grows by ``|cos| + |sin|`` of
    the angle, 1.22x at 15 degrees.

    Args:
        boxes: (M, 4) float32.
        mat: (2, 3).
        mode: ``'ellipse'`` or ``'corners'``.

    Returns:
        (M, 4) float32.
    """
    if mode not in BOX_MODES:
        raise ValueError(f'box mode must be one of {BOX_MODES}, got {mode!r}')
    if not len(boxes):
        return boxes.reshape(0, 4).astype(np.float32)
    boxes = np.asarray(boxes, np.float64)
    a = np.asarray(mat, np.float64)[:, :2]
    # edge -> centre coordinates (-0.5), map, centre -> edge (+0.5)
    t = np.asarray(mat, np.float64)[:, 2] + 0.5 - a @ np.array([0.5, 0.5])
    if mode == 'corners':
        xs, ys = boxes[:, [0, 2, 2, 0]], boxes[:, [1, 1, 3, 3]]
        mx = a[0, 0] * xs + a[0, 1] * ys + t[0]
        my = a[1, 0] * xs + a[1, 1] * ys + t[1]
        return np.stack([mx.min(1), my.min(1), mx.max(1), my.max(1)], 1).astype(np.float32)
    ctr = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    hw, hh = (boxes[:, 2] - boxes[:, 0]) / 2, (boxes[:, 3] - boxes[:, 1]) / 2
    new_ctr = ctr @ a.T + t
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
    Masks follow the same warp (nearest neighbour, same border); boxes follow
    (:func:`affine_boxes`), are clipped, and lesions pushed out of view are
    dropped. Draws from numpy's global generator (seeded per worker by
    mmengine's ``randomness`` setting).

    Args:
        shift_limit, scale_limit, rotate_limit, prob: the random ranges.
        border_value: the value outside the image with ``border_mode='constant'``
            (default: the image minimum, i.e. air).
        min_size: lesions whose clipped box is narrower are dropped.
        interpolation: ``'bilinear'`` (default) or ``'bicubic'`` (published).
        border_mode: ``'constant'`` (default) or ``'reflect101'`` (published:
            image and masks mirrored at the border, OpenCV's BORDER_REFLECT_101).
        box_mode: ``'ellipse'`` (default) or ``'corners'`` (published).
    """

    def __init__(self, shift_limit: float = 0.04, scale_limit: float = 0.2,
                 rotate_limit: float = 15.0, prob: float = 0.8,
                 border_value: float | None = None, min_size: float = 2.0,
                 interpolation: str = 'bilinear', border_mode: str = 'constant',
                 box_mode: str = 'ellipse') -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if shift_limit < 0 or scale_limit < 0 or scale_limit >= 1 or rotate_limit < 0:
            raise ValueError('limits must be >= 0 and scale_limit < 1')
        for name, value, allowed in (('interpolation', interpolation, tuple(INTERPOLATIONS)),
                                     ('border_mode', border_mode, tuple(BORDER_MODES)),
                                     ('box_mode', box_mode, BOX_MODES)):
            if value not in allowed:
                raise ValueError(f'{name} must be one of {allowed}, got {value!r}')
        self.shift_limit = shift_limit
        self.scale_limit = scale_limit
        self.rotate_limit = rotate_limit
        self.prob = prob
        self.border_value = border_value
        self.min_size = min_size
        self.interpolation = interpolation
        self.border_mode = border_mode
        self.box_mode = box_mode

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
        border = BORDER_MODES[self.border_mode]
        value = float(img.min()) if self.border_value is None else float(self.border_value)
        results['img'] = apply_by_chunks(img, lambda x: cv2.warpAffine(
            x, mat, (w, h), flags=INTERPOLATIONS[self.interpolation], borderMode=border,
            borderValue=(value,) * 4))
        if results.get('gt_masks') is not None:
            results['gt_masks'] = masks_mhw(apply_by_chunks(
                masks_hwm(results['gt_masks']), lambda x: cv2.warpAffine(
                    x, mat, (w, h), flags=cv2.INTER_NEAREST,
                    borderMode=border, borderValue=(0,) * 4)))
        if 'gt_bboxes' in results:
            results['gt_bboxes'] = affine_boxes(
                np.asarray(results['gt_bboxes'], np.float32).reshape(-1, 4), mat, self.box_mode)
            clip_and_drop(results, self.min_size)
        results['affine_matrix'] = mat
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(shift_limit={self.shift_limit}, '
                f'scale_limit={self.scale_limit}, rotate_limit={self.rotate_limit}, '
                f'prob={self.prob}, interpolation={self.interpolation!r}, '
                f'border_mode={self.border_mode!r}, box_mode={self.box_mode!r})')
