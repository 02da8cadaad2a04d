"""Helpers shared by the geometric transforms: channel-safe warps, box upkeep.

OpenCV's ``warpAffine`` gives per-channel-exact results for 1, 3 and 4
channels but a slightly different interpolation for 2 and >= 5 channels
(measured here: up to 0.02 on [0, 1] noise with 7 channels) and refuses
bicubic for more than 4, so volumes (H, W, D) are warped in chunks of 4, 3
or 1 channels. (OpenCV 5 rounds the 3- and 4-channel bilinear path in the
last float32 bit differently from the 1-channel one: at most 1 ulp.)
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def channel_chunks(n: int) -> list[int]:
    """Chunk sizes from {4, 3, 1} that sum to ``n`` (never 2)."""
    sizes = []
    while n >= 4 and n != 5:
        sizes.append(4 if n != 6 else 3)
        n -= sizes[-1]
    if n == 5:
        sizes += [4, 1]
    elif n == 3:
        sizes.append(3)
    elif n == 2:
        sizes += [1, 1]
    elif n == 1:
        sizes.append(1)
    return sizes


def apply_by_chunks(img: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply an OpenCV image op to (H, W, C) in channel chunks of 4, 3 or 1.

    ``fn`` maps an (H, W) or (H, W, c) array to the same layout at a new size.
    Returns (H', W', C); C = 0 gives an empty (H', W', 0) array.
    """
    if img.ndim == 2:
        return fn(img)
    c = img.shape[2]
    if c == 0:
        probe = fn(np.zeros(img.shape[:2], dtype=img.dtype))
        return np.zeros(probe.shape[:2] + (0,), dtype=img.dtype)
    parts, start = [], 0
    for size in channel_chunks(c):
        chunk = np.ascontiguousarray(img[:, :, start:start + size])
        out = fn(chunk[:, :, 0] if size == 1 else chunk)
        parts.append(out[:, :, None] if out.ndim == 2 else out)
        start += size
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def masks_hwm(masks: np.ndarray) -> np.ndarray:
    """(M, H, W) -> (H, W, M) for OpenCV."""
    return np.ascontiguousarray(masks.transpose(1, 2, 0))


def masks_mhw(masks: np.ndarray) -> np.ndarray:
    """(H, W, M) -> (M, H, W)."""
    return np.ascontiguousarray(masks.transpose(2, 0, 1))


def clip_and_drop(results: dict, min_size: float = 2.0) -> None:
    """Clip ``gt_bboxes`` to the image and drop lesions pushed out of view.

    A lesion is dropped when its clipped box is empty or under ``min_size``
    px wide or high, or its mask (when present) has no pixel left. ``gt_bboxes``,
    ``gt_labels`` and ``gt_masks`` are filtered together (in place).
    """
    if 'gt_bboxes' not in results:
        return
    h, w = results['img'].shape[:2] if 'img' in results else results['img_shape']
    boxes = np.asarray(results['gt_bboxes'], dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (bw > 0) & (bh > 0) & (bw >= min_size) & (bh >= min_size)
    masks = results.get('gt_masks')
    if masks is not None and len(masks):
        keep &= masks.reshape(len(masks), -1).any(axis=1)
    results['gt_bboxes'] = boxes[keep]
    if 'gt_labels' in results:
        results['gt_labels'] = np.asarray(results['gt_labels'])[keep]
    if masks is not None:
        results['gt_masks'] = masks[keep]
