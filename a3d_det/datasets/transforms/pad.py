"""``PadCT``: pad H and W (bottom, right) to a multiple of a divisor."""
from __future__ import annotations


import numpy as np

from a3d_det.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PadCT:
    """Pad the bottom and right of ``img`` (and masks, with 0) so H and W are
    multiples of ``size_divisor``; the slice axis is never padded. Sets
    ``pad_shape`` (H, W). ``pad_val`` defaults to the image minimum (air)."""

    def __init__(self, size_divisor: int = 32, pad_val: float | None = None) -> None:
        if size_divisor < 1:
            raise ValueError(f'size_divisor must be positive, got {size_divisor}')
        self.size_divisor = size_divisor
        self.pad_val = pad_val

    def __call__(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        d = self.size_divisor
        ph, pw = -(-h // d) * d, -(-w // d) * d
        if (ph, pw) != (h, w):
            val = float(img.min()) if self.pad_val is None else float(self.pad_val)
            out = np.full((ph, pw) + img.shape[2:], val, dtype=img.dtype)
            out[:h, :w] = img
            results['img'] = out
            masks = results.get('gt_masks')
            if masks is not None:
                padded = np.zeros((len(masks), ph, pw), dtype=masks.dtype)
                padded[:, :h, :w] = masks
                results['gt_masks'] = padded
        results['pad_shape'] = (ph, pw)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size_divisor={self.size_divisor}, pad_val={self.pad_val})'
