"""Per-prediction loop reference of the DeepLesion FROC protocol.

A direct transcription of DeepLesion's published evaluation code (one Python
iteration per prediction, ``np.interp`` for the FP levels), extended with the
IoBB criterion and lesion groups the same way as :mod:`a3d_det.evaluation.froc`.
It exists to check the vectorised implementation (tests) and to time it
(``tools/analysis/benchmark.py --task froc``); use :func:`~a3d_det.evaluation.froc.
sens_at_fp` for real evaluation.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from a3d_det.evaluation.froc import FP_LEVELS, resolve_thr


def _overlaps_one(box: np.ndarray, gts: np.ndarray, criterion: str
                  ) -> np.ndarray:
    """Overlap of one (4,) box with (M, 4) lesions, inclusive pixels."""
    ixmin = np.maximum(gts[:, 0], box[0])
    iymin = np.maximum(gts[:, 1], box[1])
    ixmax = np.minimum(gts[:, 2], box[2])
    iymax = np.minimum(gts[:, 3], box[3])
    iw = np.maximum(ixmax - ixmin + 1., 0.)
    ih = np.maximum(iymax - iymin + 1., 0.)
    inters = iw * ih
    area = (box[2] - box[0] + 1.) * (box[3] - box[1] + 1.)
    if criterion == 'iobb':
        return inters / area
    union = area + (gts[:, 2] - gts[:, 0] + 1.) * (gts[:, 3] - gts[:, 1] + 1.) \
        - inters
    return inters / union


def froc_curve_reference(pred_boxes: Sequence[np.ndarray],
                         gt_boxes: Sequence[np.ndarray],
                         iou_thr: float | None = None,
                         criterion: str = 'iou',
                         gt_in_group: Sequence[np.ndarray] | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Loop version of :func:`a3d_det.evaluation.froc.froc_curve`."""
    thr = resolve_thr(criterion, iou_thr)
    num_img = len(pred_boxes)
    preds = [np.asarray(p, dtype=np.float64).reshape(-1, 5) for p in pred_boxes]
    gts = [np.asarray(g, dtype=np.float64).reshape(-1, 4) for g in gt_boxes]
    counted = ([np.ones(len(g), dtype=bool) for g in gts] if gt_in_group is None
               else [np.asarray(m, dtype=bool).reshape(-1)
                     for m in gt_in_group])
    img_idxs = np.concatenate([np.full(len(p), i, dtype=np.int64)
                               for i, p in enumerate(preds)] or [[]]
                              ).astype(np.int64)
    boxes_cat = np.vstack(preds) if preds else np.zeros((0, 5))
    order = np.argsort(-boxes_cat[:, 4], kind='stable')
    boxes_cat, img_idxs = boxes_cat[order, :4], img_idxs[order]

    hits = [np.zeros(len(g), dtype=bool) for g in gts]
    n_hits, n_miss, tps, fps = 0, 0, [], []
    for i in range(len(boxes_cat)):
        img_gts = gts[img_idxs[i]]
        overlaps = _overlaps_one(boxes_cat[i], img_gts, criterion)
        if len(overlaps) == 0 or overlaps.max() < thr:
            n_miss += 1
        else:
            for j in range(len(overlaps)):
                if overlaps[j] >= thr and not hits[img_idxs[i]][j]:
                    hits[img_idxs[i]][j] = True
                    if counted[img_idxs[i]][j]:
                        n_hits += 1
        tps.append(n_hits)
        fps.append(n_miss)
    num_gt = int(sum(c.sum() for c in counted))
    sens = (np.array(tps, dtype=np.float64) / num_gt if num_gt
            else np.zeros(len(tps)))
    fp_per_img = np.array(fps, dtype=np.float64) / max(num_img, 1)
    return sens, fp_per_img


def sens_at_fp_reference(pred_boxes: Sequence[np.ndarray],
                         gt_boxes: Sequence[np.ndarray],
                         fp_levels: Sequence[float] = FP_LEVELS,
                         iou_thr: float | None = None,
                         criterion: str = 'iou',
                         gt_in_group: Sequence[np.ndarray] | None = None
                         ) -> np.ndarray:
    """Loop version of :func:`a3d_det.evaluation.froc.sens_at_fp`."""
    sens, fp_per_img = froc_curve_reference(pred_boxes, gt_boxes, iou_thr,
                                            criterion, gt_in_group)
    if len(sens) == 0:
        return np.zeros(len(fp_levels))
    out = []
    for level in fp_levels:
        if level <= fp_per_img.max():
            out.append(np.interp(level, fp_per_img, sens))
        else:
            out.append(sens.max())
    return np.array(out, dtype=np.float64)
