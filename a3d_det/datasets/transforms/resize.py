"""``ResizeCT``: resize the longer side to a fixed size, keeping the aspect ratio."""
from __future__ import annotations

import cv2
import numpy as np

from a3d_det.datasets.transforms.geometry import (apply_by_chunks, clip_and_drop, masks_hwm,
                                                  masks_mhw)
from a3d_det.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ResizeCT:
    """Scale by ``size / max(H, W)`` (Sec. 3.1: "resize each slice to 512x512").

    Sets ``img_shape`` (H', W') and ``scale_factor`` (w_scale, h_scale) =
    new / original (accumulated over several resizes); boxes are scaled,
    masks resized with nearest neighbour.
    """

    def __init__(self, size: int = 512) -> None:
        if size < 1:
            raise ValueError(f'size must be positive, got {size}')
        self.size = size

    def __call__(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        scale = self.size / max(h, w)
        nw, nh = max(int(w * scale + 0.5), 1), max(int(h * scale + 0.5), 1)
        sw, sh = nw / w, nh / h
        if (nw, nh) != (w, h):
            results['img'] = apply_by_chunks(
                img, lambda x: cv2.resize(x, (nw, nh), interpolation=cv2.INTER_LINEAR))
            if results.get('gt_masks') is not None:
                results['gt_masks'] = masks_mhw(apply_by_chunks(
                    masks_hwm(results['gt_masks']),
                    lambda x: cv2.resize(x, (nw, nh), interpolation=cv2.INTER_NEAREST)))
        if 'gt_bboxes' in results:
            boxes = np.asarray(results['gt_bboxes'], np.float32).reshape(-1, 4)
            results['gt_bboxes'] = boxes * np.array([sw, sh, sw, sh], np.float32)
            clip_and_drop(results, min_size=0.0)
        old = results.get('scale_factor', (1.0, 1.0))
        results['scale_factor'] = (float(old[0]) * sw, float(old[1]) * sh)
        results['img_shape'] = (nh, nw)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size})'
