"""GrabCut weak masks from RECIST annotations (paper Sec. 3.1, following [22, 26]).

DeepLesion has no pixel-wise labels; the mask head of the detector is trained
on masks that GrabCut grows from the RECIST cross: the cross is sure
foreground, everything outside the lesion's box sure background, the rest is
decided by GrabCut on the windowed key slice. When the RECIST is degenerate
or GrabCut fails, the mask is the ellipse through the RECIST axes; such
fallbacks are counted in a :class:`GrabCutStats`.
"""
from __future__ import annotations

import math
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Sequence

import cv2
import numpy as np

from a3d_det.datasets.deeplesion import DEFAULT_WINDOW, SliceReadError, read_png_hu, windowing
from a3d_det.datasets.mask_rle import encode_rle
from a3d_det.datasets.recist import box_mask, recist_axes, recist_ellipse_mask


@dataclass
class GrabCutStats:
    """How many masks came from GrabCut and how many fell back to the ellipse."""

    grabcut: int = 0
    fallback: int = 0
    reasons: Counter = field(default_factory=Counter)

    def add_fallback(self, reason: str) -> None:
        self.fallback += 1
        self.reasons[reason] += 1

    def merge(self, other: GrabCutStats) -> None:
        self.grabcut += other.grabcut
        self.fallback += other.fallback
        self.reasons.update(other.reasons)

    def as_dict(self) -> dict[str, Any]:
        return dict(grabcut=self.grabcut, fallback=self.fallback, reasons=dict(self.reasons))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GrabCutStats:
        return cls(int(d.get('grabcut', 0)), int(d.get('fallback', 0)),
                   Counter(d.get('reasons', {})))

    def __str__(self) -> str:
        total = self.grabcut + self.fallback
        why = ', '.join(f'{k}: {v}' for k, v in sorted(self.reasons.items()))
        return (f'{total} masks: {self.grabcut} GrabCut, {self.fallback} ellipse fallback'
                + (f' ({why})' if why else ''))


#: Process-wide counter used when no ``stats`` is passed to :func:`recist_to_mask`.
GRABCUT_STATS = GrabCutStats()


def windowed_to_uint8(image: np.ndarray) -> np.ndarray:
    """Stretch a windowed patch to uint8 for GrabCut without wrapping.

    Windowed values reach -50 at the low end; a plain ``astype(np.uint8)``
    would wrap them to ~206-255. The patch is shifted and scaled by its
    1st-99th percentiles and clipped to [0, 255] first, which keeps the
    order of intensities and uses the full 8-bit range for soft-tissue
    contrast.

    Args:
        image: (h, w) float array.

    Returns:
        (h, w) uint8.
    """
    img = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(img, (1, 99)) if img.size else (0.0, 1.0)
    if not hi - lo > 1e-3:
        lo, hi = float(img.min(initial=0.0)), float(img.min(initial=0.0)) + 1.0
    out = (img - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def recist_to_mask(image: np.ndarray, box: Sequence[float], recist: Sequence[float],
                   stats: GrabCutStats | None = None, iterations: int = 5) -> np.ndarray:
    """Weak lesion mask from a RECIST annotation by GrabCut.

    Args:
        image: (H, W) windowed key slice (:func:`windowing`, values in
            [-50, 205]); any float range works.
        box: (4,) 0-based x1y1x2y2 lesion box.
        recist: (8,) 0-based long-axis then short-axis endpoints.
        stats: where to count GrabCut vs fallback (default
            :data:`GRABCUT_STATS`).
        iterations: GrabCut iterations.

    Returns:
        bool (H, W); never outside ``box``. Falls back to the ellipse
        through the RECIST axes when the RECIST is degenerate (non-finite,
        long axis < 2 px or short axis < 1 px), the box is empty, there is
        no background around the box, GrabCut raises, or its result
        collapses to under a fifth of the ellipse.
    """
    stats = GRABCUT_STATS if stats is None else stats
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f'image must be (H, W), got shape {img.shape}')
    h, w = img.shape
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    recist = np.asarray(recist, dtype=np.float64).reshape(-1)
    if box.size != 4 or recist.size != 8:
        raise ValueError(f'box must have 4 and recist 8 values, got {box.size} and {recist.size}')

    def fallback(reason: str) -> np.ndarray:
        stats.add_fallback(reason)
        return recist_ellipse_mask(recist, (h, w), box if np.all(np.isfinite(box)) else None)

    if not np.all(np.isfinite(box)):
        return fallback('bad box')
    inside = box_mask(box, (h, w)).astype(bool)
    if box[2] <= 0 or box[3] <= 0 or box[0] >= w - 1 or box[1] >= h - 1:
        return fallback('box outside image')
    axes = recist_axes(recist)
    if axes is None or axes[2] < 1.0 or axes[3] < 0.5:
        return fallback('degenerate RECIST')
    ellipse = recist_ellipse_mask(recist, (h, w), box)

    # Work on a patch around the box: GrabCut needs background samples there.
    bw, bh = box[2] - box[0], box[3] - box[1]
    margin = max(8.0, 0.5 * max(bw, bh))
    x0, y0 = max(int(math.floor(box[0] - margin)), 0), max(int(math.floor(box[1] - margin)), 0)
    x1, y1 = min(int(math.ceil(box[2] + margin)) + 1, w), min(int(math.ceil(box[3] + margin)) + 1, h)
    roi = (slice(y0, y1), slice(x0, x1))
    gc = np.full((y1 - y0, x1 - x0), cv2.GC_BGD, np.uint8)
    gc[inside[roi]] = cv2.GC_PR_BGD
    gc[ellipse[roi]] = cv2.GC_PR_FGD
    cross = np.zeros_like(gc)
    pts = np.round((recist.reshape(4, 2) - [x0, y0]) * 16).astype(np.int32)
    cv2.line(cross, tuple(pts[0]), tuple(pts[1]), 1, 1, cv2.LINE_8, shift=4)
    cv2.line(cross, tuple(pts[2]), tuple(pts[3]), 1, 1, cv2.LINE_8, shift=4)
    cross &= inside[roi]
    gc[cross.astype(bool)] = cv2.GC_FGD
    if not (gc == cv2.GC_BGD).any():
        return fallback('no background around box')
    patch = cv2.cvtColor(windowed_to_uint8(img[roi]), cv2.COLOR_GRAY2BGR)
    try:
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(patch, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return fallback('GrabCut error')
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    fg &= inside[roi]
    # Keep the components that the RECIST cross touches.
    n, labels = cv2.connectedComponents(fg, connectivity=8)
    keep = np.unique(labels[cross.astype(bool) & (fg > 0)])
    keep = keep[keep > 0]
    fg = np.isin(labels, keep)
    if fg.sum() < 0.2 * max(ellipse.sum(), 1):
        return fallback('GrabCut collapsed')
    out = np.zeros((h, w), dtype=bool)
    out[roi] = fg
    stats.grabcut += 1
    return out


def wraparound_uint8(image: np.ndarray) -> np.ndarray:
    """The published cast of the windowed slice to uint8: truncation towards
    zero, then wrap-around modulo 256 (what ``astype(np.uint8)`` of a float
    array does on x86; windowed air at -50 becomes 206, brighter than bone).

    A bug, kept to reproduce the published masks (:func:`published_grabcut_mask`).
    """
    return (np.trunc(np.asarray(image, dtype=np.float64)).astype(np.int64) % 256).astype(np.uint8)


def published_grabcut_mask(image: np.ndarray, box: Sequence[float], recist: Sequence[float],
                           stats: Optional[GrabCutStats] = None,
                           iterations: int = 3) -> np.ndarray:
    """The published weak mask (M3DV/AlignShift,
    ``deeplesion/dataset/mask_generateor.py``), bugs included.

    GrabCut on the whole windowed slice cast to uint8 with wrap-around
    (:func:`wraparound_uint8`); the box (corners truncated to int) is
    probable foreground, the polygon of the RECIST end points in the order
    long 1, short 1, long 2, short 2 (truncated to int) sure foreground, the
    rest sure background; 3 iterations; the result is not limited to the
    box. The random initialisation is seeded per mask (reproducible).
    Where the published script would stop with an error (GrabCut
    raising), the mask is the ellipse through the RECIST axes, counted in
    ``stats``.

    Args:
        image: (H, W) windowed key slice (values in [-50, 205]).
        box: (4,) 0-based x1y1x2y2.
        recist: (8,) 0-based long-axis then short-axis end points.

    Returns:
        bool (H, W).
    """
    stats = GRABCUT_STATS if stats is None else stats
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f'image must be (H, W), got shape {img.shape}')
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    recist = np.asarray(recist, dtype=np.float64).reshape(-1)
    if box.size != 4 or recist.size != 8:
        raise ValueError(f'box must have 4 and recist 8 values, got {box.size} and {recist.size}')
    if not (np.all(np.isfinite(box)) and np.all(np.isfinite(recist))):
        stats.add_fallback('bad box')
        return recist_ellipse_mask(recist, img.shape, box if np.all(np.isfinite(box)) else None)
    gc = np.zeros(img.shape, np.uint8)                      # GC_BGD
    x1, y1, x2, y2 = box
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]).astype(np.int32)
    cv2.fillConvexPoly(gc, corners, cv2.GC_PR_FGD)
    kite = recist.astype(np.int32).reshape(4, 2)[[0, 2, 1, 3]]
    cv2.fillConvexPoly(gc, kite, cv2.GC_FGD)
    rgb = np.repeat(wraparound_uint8(img)[:, :, None], 3, axis=2)
    # GrabCut's k-means initialisation draws from OpenCV's (per-thread) RNG:
    # seeded per mask, the same slice always gives the same mask.
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(rgb, gc, None, np.zeros((1, 65)), np.zeros((1, 65)), iterations,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        stats.add_fallback('GrabCut error')
        return recist_ellipse_mask(recist, img.shape, box)
    stats.grabcut += 1
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


#: ``method`` of :func:`grabcut_image_masks`: the mask function.
GRABCUT_METHODS = {'corrected': recist_to_mask, 'published': published_grabcut_mask}


def grabcut_image_masks(image_dir: str, raw: dict[str, Any],
                        window: Sequence[float] = DEFAULT_WINDOW,
                        method: str = 'corrected') -> dict[str, Any]:
    """GrabCut masks of every lesion of one key image (the prepare tool's unit of work).

    Args:
        image_dir: the ``Images_png`` folder.
        raw: a raw image dict (:func:`records_to_images`): ``file_name``,
            ``gt_bboxes``, ``recists``.
        window: HU window of the slice GrabCut sees.
        method: ``'corrected'`` (:func:`recist_to_mask`, the default) or
            ``'published'`` (:func:`published_grabcut_mask`, the published
            masks with their uint8 wrap-around bug).

    Returns:
        ``{'file_name', 'gt_masks': [COCO RLE dicts], 'ori_shape': [H, W],
        'stats': GrabCutStats.as_dict(), 'error': None}``, or with ``error``
        set (and no masks) when the key slice cannot be read.
    """
    if method not in GRABCUT_METHODS:
        raise ValueError(f'method must be one of {tuple(GRABCUT_METHODS)}, got {method!r}')
    mask_fn = GRABCUT_METHODS[method]
    stats = GrabCutStats()
    path = osp.join(image_dir, raw['file_name'])
    try:
        hu = read_png_hu(path)
    except SliceReadError as e:
        return dict(file_name=raw['file_name'], gt_masks=None, ori_shape=None,
                    stats=stats.as_dict(), error=str(e))
    img = windowing(hu, window)
    masks = [encode_rle(mask_fn(img, box, rec, stats))
             for box, rec in zip(raw['gt_bboxes'], raw['recists'])]
    return dict(file_name=raw['file_name'], gt_masks=masks, ori_shape=list(img.shape),
                stats=stats.as_dict(), error=None)
