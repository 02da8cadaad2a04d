"""``RandomHorizontalFlip`` of the CT volume with its boxes and masks."""
from __future__ import annotations

import numpy as np

from a3d_det.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomHorizontalFlip:
    """Flip left-right with probability ``prob`` (paper Sec. 3.1 augmentation).

    Boxes map as x1' = W - x2, x2' = W - x1 (flipping twice is the
    identity); masks flip with the image. Toggles ``flip``. The random draw
    uses numpy's global generator, which mmengine seeds per worker
    (``randomness=dict(seed=...)``), so augmentation is reproducible.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def __call__(self, results: dict) -> dict:
        flip = np.random.rand() < self.prob
        results['flip'] = bool(results.get('flip', False)) ^ bool(flip)
        if not flip:
            return results
        return self.flip(results)

    @staticmethod
    def flip(results: dict) -> dict:
        """Flip ``results`` in place (always)."""
        img = results['img']
        w = img.shape[1]
        results['img'] = np.ascontiguousarray(img[:, ::-1])
        if 'gt_bboxes' in results:
            boxes = np.asarray(results['gt_bboxes'], np.float32).reshape(-1, 4).copy()
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
            results['gt_bboxes'] = boxes
        if results.get('gt_masks') is not None:
            results['gt_masks'] = np.ascontiguousarray(results['gt_masks'][:, :, ::-1])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'
