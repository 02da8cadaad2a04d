"""Lesions across slices: per-slice detections linked into 3D lesions.

A lesion shows on several neighbouring slices of a series (5-20 at DeepLesion's
slice intervals), and the detector reports it on each one. Linking gives one
lesion with its extent along z, its size and its volume:

1. detections are taken best score first; each one not yet in a lesion
   starts a new lesion (its key detection);
2. the lesion grows towards higher and then towards lower slice indices: from
   its last member, the nearest slice at most ``max_gap + 1`` indices away that
   holds unlinked detections overlapping the member's box (IoU > 0 and >=
   ``iou_thr``) gives the best-scoring of them, which becomes the next member;
3. so a lesion has at most one detection per slice, bridges up to
   ``max_gap`` slices where the detector missed it, and stops at the first
   longer gap.

IoU is computed on continuous box coordinates (area = (x2 - x1) * (y2 - y1)).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ['link_lesions', 'assign_lesions']


def _interval(slices: Sequence[dict], slice_interval: float | None) -> float | None:
    if slice_interval is not None:
        if not float(slice_interval) > 0:
            raise ValueError(f'slice_interval must be positive, got {slice_interval}')
        return float(slice_interval)
    z = [float(s['z_mm']) for s in slices if s.get('z_mm') is not None]
    if len(z) < 2:
        return None
    return float(np.median(np.abs(np.diff(z))))


def assign_lesions(slices: Sequence[dict], iou_thr: float = 0.3, max_gap: int = 1,
                   slice_interval: float | None = None
                   ) -> tuple[list[dict], list[list[tuple[int, int]]]]:
    """:func:`link_lesions`, plus each lesion's members.

    Returns:
        (lesions, members): ``members[k]`` lists the (slice index, position
        of the detection in that slice's ``detections``) of lesion
        ``lesions[k]``, ordered by slice index.
    """
    if max_gap < 0:
        raise ValueError(f'max_gap must be >= 0, got {max_gap}')
    slices = sorted(slices, key=lambda s: int(s['index']))
    interval = _interval(slices, slice_interval)
    z_of = {int(s['index']): s.get('z_mm') for s in slices}
    dets = []            # (slice index, position in slice, detection)
    by_index: dict[int, list[int]] = {}
    for s in slices:
        for j, d in enumerate(s.get('detections') or []):
            by_index.setdefault(int(s['index']), []).append(len(dets))
            dets.append((int(s['index']), j, d))
    boxes = np.asarray([d['box'] for _, _, d in dets], dtype=np.float64).reshape(-1, 4)
    scores = np.asarray([float(d['score']) for _, _, d in dets], dtype=np.float64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    slice_members = {i: np.asarray(ks) for i, ks in by_index.items()}
    order = np.argsort(-scores, kind='stable')
    linked = np.zeros(len(dets), dtype=bool)

    def next_member(cur: int, direction: int) -> int | None:
        """The member after ``cur`` towards ``direction``, or ``None``."""
        for step in range(1, max_gap + 2):
            ks = slice_members.get(dets[cur][0] + direction * step)
            if ks is None:
                continue
            ks = ks[~linked[ks]]
            # IoU of cur's box with the slice's unlinked boxes
            iw = (np.minimum(boxes[ks, 2], boxes[cur, 2])
                  - np.maximum(boxes[ks, 0], boxes[cur, 0])).clip(min=0)
            ih = (np.minimum(boxes[ks, 3], boxes[cur, 3])
                  - np.maximum(boxes[ks, 1], boxes[cur, 1])).clip(min=0)
            inter = iw * ih
            union = areas[ks] + areas[cur] - inter
            iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
            ok = ks[(iou > 0) & (iou >= iou_thr)]  # overlap needed even at iou_thr 0
            if ok.size:  # the best-scoring overlapping detection of that slice
                return int(ok[np.argmax(scores[ok])])
        return None

    lesions, members = [], []
    for seed in order.tolist():
        if linked[seed]:
            continue
        linked[seed] = True
        group = [seed]
        for direction in (1, -1):
            cur = seed
            while (nxt := next_member(cur, direction)) is not None:
                linked[nxt] = True
                group.append(nxt)
                cur = nxt
        group.sort(key=lambda k: dets[k][0])
        key_index, _, key = dets[seed]
        axes = [d['long_axis_mm'] for _, _, d in (dets[k] for k in group)
                if d.get('long_axis_mm') is not None]
        mm2 = [dets[k][2].get('area_mm2') for k in group]
        volume = (float(sum(mm2)) * interval
                  if interval is not None and all(a is not None for a in mm2) else None)
        zs = [z_of[dets[k][0]] for k in group if z_of[dets[k][0]] is not None]
        lesions.append(dict(
            id=len(lesions) + 1,
            slices=[dets[k][0] for k in group],
            key_index=key_index,
            box=list(key['box']),
            score=float(key['score']),
            long_axis_mm=float(max(axes)) if axes else None,
            volume_mm3=volume,
            z_range_mm=[float(min(zs)), float(max(zs))] if zs else None,
        ))
        members.append([(dets[k][0], dets[k][1]) for k in group])
    return lesions, members


def link_lesions(slices: Sequence[dict], iou_thr: float = 0.3, max_gap: int = 1,
                 slice_interval: float | None = None) -> list[dict]:
    """Link per-slice detections into lesions (see the module docstring).

    Args:
        slices: the per-slice entries of ``detections.json``: ``index``,
            ``z_mm`` and ``detections`` (each with ``box`` x1y1x2y2,
            ``score``, ``area_mm2`` and ``long_axis_mm``), in index order.
        iou_thr: lowest box IoU between members on nearby slices.
        max_gap: slices without the lesion that may lie between two members.
        slice_interval: mm; default the median |difference| of consecutive
            ``z_mm``.

    Returns:
        One dict per lesion, ``id`` 1, 2, ... in order of best score:
        ``slices`` (member slice indices, ascending), ``key_index`` (the
        member with the best score), ``box`` (its box), ``score`` (its
        score), ``long_axis_mm`` (largest member long axis), ``volume_mm3``
        (sum of member ``area_mm2`` times the slice interval; ``None`` when
        an area or the interval is unknown) and ``z_range_mm`` ([lowest,
        highest] member ``z_mm``).
    """
    return assign_lesions(slices, iou_thr, max_gap, slice_interval)[0]
