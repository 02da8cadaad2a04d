"""``WindowCT``: HU -> network input range (Sec. 3.1)."""
from __future__ import annotations

from collections.abc import Sequence

from a3d_det.datasets.deeplesion import DEFAULT_WINDOW, windowing
from a3d_det.registry import TRANSFORMS


@TRANSFORMS.register_module()
class WindowCT:
    """Clip ``img`` to ``window`` HU and map it to [-50, 205] (see :func:`windowing`)."""

    def __init__(self, window: Sequence[float] = DEFAULT_WINDOW) -> None:
        if len(window) != 2 or not window[1] > window[0]:
            raise ValueError(f'window must be (lo, hi) with hi > lo, got {window}')
        self.window = (float(window[0]), float(window[1]))

    def __call__(self, results: dict) -> dict:
        results['img'] = windowing(results['img'], self.window)
        results['window'] = self.window
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(window={self.window})'
