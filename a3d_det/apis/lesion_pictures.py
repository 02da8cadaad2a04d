"""One picture per lesion: a strip of its slices around it.

Each tile is the lesion's region on one member slice, in a soft-tissue
display window, with the predicted mask's outline, the slice index and the
detection's score; the key slice (the best score) has a yellow frame and
"key" written on it. Written as ``lesion_NNN.png`` with the lesion id.
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from a3d_det.apis.mask_volume import MaskCrop, paste_mask
from a3d_det.visualization import window_image

__all__ = ['lesion_picture_name', 'lesion_strip', 'write_lesion_pictures',
           'KEY_COLOR', 'OUTLINE_COLOR']

KEY_COLOR = (0, 255, 255)        # BGR yellow: the key slice's frame
OUTLINE_COLOR = (0, 220, 0)      # BGR green: the mask outline
TILE = 160                       # px, side of one tile
SEPARATOR = 4                    # px of black between tiles


def lesion_picture_name(lesion_id: int) -> str:
    """File name of lesion ``lesion_id``'s picture."""
    return f'lesion_{int(lesion_id):03d}.png'


def _region(boxes: Sequence[Sequence[float]], shape: tuple[int, int]
            ) -> tuple[int, int, int, int]:
    """A square around the union of the boxes (+50 % margin, >= 32 px)."""
    b = np.asarray(boxes, dtype=np.float64)
    x1, y1 = b[:, 0].min(), b[:, 1].min()
    x2, y2 = b[:, 2].max(), b[:, 3].max()
    side = max(32.0, 1.5 * max(x2 - x1, y2 - y1))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = shape
    side = min(side, float(max(h, w)))
    x0 = int(round(min(max(cx - side / 2, 0), max(w - side, 0))))
    y0 = int(round(min(max(cy - side / 2, 0), max(h - side, 0))))
    return x0, y0, min(int(round(side)), w - x0), min(int(round(side)), h - y0)


def lesion_strip(volume: np.ndarray, lesion: dict, group: Sequence[tuple[int, int]],
                 detections: Mapping[tuple[int, int], dict],
                 masks: Mapping[tuple[int, int], MaskCrop | None]) -> np.ndarray:
    """(TILE, n x TILE + separators, 3) BGR strip of one lesion's slices.

    Args:
        volume: (N, H, W) HU.
        lesion: its ``key_index`` marks the key tile.
        group: its (slice index, detection position) members.
        detections: each member's detection (``box``, ``score``).
        masks: each member's mask crop (``None``: no outline).
    """
    shape = volume.shape[1:]
    x0, y0, w, h = _region([detections[m]['box'] for m in group], shape)
    scale = TILE / max(w, h)
    tiles = []
    for member in group:
        index = member[0]
        grey = window_image(volume[index, y0:y0 + h, x0:x0 + w])
        tile = cv2.cvtColor(cv2.resize(grey, (round(w * scale), round(h * scale)),
                                       interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2BGR)
        canvas = np.zeros((TILE, TILE, 3), np.uint8)
        canvas[:tile.shape[0], :tile.shape[1]] = tile
        crop = masks.get(member)
        if crop is not None:
            full = paste_mask(crop, shape)[y0:y0 + h, x0:x0 + w].astype(np.uint8)
            big = cv2.resize(full, (tile.shape[1], tile.shape[0]),
                             interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(canvas, contours, -1, OUTLINE_COLOR, 1)
        score = float(detections[member]['score'])
        cv2.putText(canvas, f'#{index} {score:.2f}', (4, TILE - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        if index == lesion['key_index']:
            cv2.rectangle(canvas, (1, 1), (TILE - 2, TILE - 2), KEY_COLOR, 2)
            cv2.putText(canvas, 'key', (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        KEY_COLOR, 1, cv2.LINE_AA)
        tiles.append(canvas)
    gap = np.zeros((TILE, SEPARATOR, 3), np.uint8)
    parts = []
    for i, t in enumerate(tiles):
        parts += ([gap] if i else []) + [t]
    return np.concatenate(parts, axis=1)


def write_lesion_pictures(series, lesions: Sequence[dict],
                          members: Sequence[Sequence[tuple[int, int]]],
                          slices: Sequence[dict],
                          masks: Mapping[tuple[int, int], MaskCrop | None],
                          out_dir: str) -> list[str]:
    """Write ``lesion_NNN.png`` for every lesion; return the paths.

    Args:
        series: the ``CTSeries`` (its volume).
        lesions, members: from :func:`~a3d_det.apis.assign_lesions`.
        slices: the per-slice entries the lesions were linked from.
        masks: mask crops by (slice index, detection position).
        out_dir: the output folder.
    """
    os.makedirs(out_dir, exist_ok=True)
    detections = {(int(s['index']), j): d for s in slices
                  for j, d in enumerate(s['detections'])}
    written = []
    for lesion, group in zip(lesions, members):
        path = osp.join(out_dir, lesion_picture_name(lesion['id']))
        strip = lesion_strip(series.volume, lesion, group, detections, masks)
        if not cv2.imwrite(path, strip):
            raise OSError(f'cannot write {path}')
        written.append(path)
    return written
