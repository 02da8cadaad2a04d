"""Compact instance masks: COCO-style run-length encoding in numpy, and polygons.

The prepared annotation files store one mask per lesion as a COCO RLE dict
``{'size': [H, W], 'counts': [...]}`` (column-major runs starting with
zeros; ``counts`` a list of ints, or COCO's compressed string) or as
polygons ``[[x1, y1, x2, y2, ...], ...]``. No pycocotools needed.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def encode_rle(mask: np.ndarray, compress: bool = False) -> dict[str, Any]:
    """Encode a binary (H, W) mask as COCO RLE.

    Args:
        mask: (H, W) bool or 0/1 array.
        compress: return COCO's compressed ``counts`` string instead of a list.

    Returns:
        ``{'size': [H, W], 'counts': list[int] | str}``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'mask must be (H, W), got shape {mask.shape}')
    flat = mask.ravel(order='F').astype(bool)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    if not flat.size:
        counts = []
    size = [int(mask.shape[0]), int(mask.shape[1])]
    if compress:
        return {'size': size, 'counts': _counts_to_string(counts)}
    return {'size': size, 'counts': [int(c) for c in counts]}


def _counts_to_string(counts: list[int]) -> str:
    # COCO maskApi rleToString: deltas against counts[i-2], 5-bit LEB128-like chars.
    out = []
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            ch = x & 0x1f
            x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return ''.join(out)


def _string_to_counts(s: str) -> list[int]:
    # COCO maskApi rleFrString.
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise ValueError('truncated compressed RLE string')
            c = ord(s[p]) - 48
            x |= (c & 0x1f) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_mask(obj: dict | list, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a compact mask (RLE dict or polygon list) to a bool (H, W) array.

    Args:
        obj: COCO RLE dict (``counts`` list or string) or polygons
            ``[[x1, y1, x2, y2, ...], ...]`` in 0-based pixels.
        shape: (H, W); required for polygons, checked against RLE ``size``.

    Raises:
        ValueError: malformed mask or size mismatch.
    """
    if isinstance(obj, dict):
        if 'size' not in obj or 'counts' not in obj:
            raise ValueError(f'RLE dict needs size and counts, got keys {sorted(obj)}')
        h, w = (int(v) for v in obj['size'])
        if shape is not None and (h, w) != tuple(shape):
            raise ValueError(f'RLE size {(h, w)} does not match image shape {tuple(shape)}')
        counts = obj['counts']
        if isinstance(counts, (bytes, str)):
            counts = _string_to_counts(counts.decode() if isinstance(counts, bytes) else counts)
        counts = np.asarray(counts, dtype=np.int64)
        if (counts < 0).any() or counts.sum() != h * w:
            raise ValueError(f'RLE counts sum to {int(counts.sum())}, expected {h * w}')
        vals = np.zeros(len(counts), dtype=bool)
        vals[1::2] = True
        flat = np.repeat(vals, counts)
        return flat.reshape((h, w), order='F')
    if isinstance(obj, (list, tuple)):
        if shape is None:
            raise ValueError('decoding polygons needs the image shape')
        mask = np.zeros(tuple(shape), dtype=np.uint8)
        polys = []
        for poly in obj:
            pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
            if len(pts) < 3:
                raise ValueError(f'a polygon needs >= 3 points, got {len(pts)}')
            polys.append(np.round(pts * 16).astype(np.int32))
        if polys:
            cv2.fillPoly(mask, polys, 1, lineType=cv2.LINE_8, shift=4)
        return mask.astype(bool)
    raise ValueError(f'unsupported mask encoding {type(obj).__name__}')
