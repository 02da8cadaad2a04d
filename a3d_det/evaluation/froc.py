"""FROC analysis of lesion detection, the DeepLesion protocol (paper Sec. 3).

The A3D paper (Sec. 3, Tables 2-3) reports the sensitivity at 0.5, 1, 2, 4, 8
and 16 false positives (FPs) per image on the DeepLesion test set, and their
mean over 0.5-4 FPs ("Avg."). This module computes those numbers exactly as
DeepLesion's published evaluation code does, vectorised with numpy:

1. All predictions of all images are sorted by score, highest first (ties
   keep image order, then the order within the image: a stable sort).
2. Overlap with inclusive pixel coordinates: a box ``[x1, y1, x2, y2]`` is
   ``(x2 - x1 + 1) x (y2 - y1 + 1)`` pixels. The criterion is IoU (default,
   threshold 0.5) or IoBB, the intersection over the *predicted* box (later
   DeepLesion work, threshold 0.3).
3. A prediction whose overlap with at least one lesion of its image reaches the
   threshold marks every such lesion as found (each lesion counts once) and is
   not a false positive, even when those lesions were found before. Any other
   prediction is a false positive.
4. After the k-th prediction: sensitivity = found lesions / all lesions, FPs
   per image = false positives so far / number of images (images without any
   prediction or any lesion count too).
5. The sensitivity at an FP level is linearly interpolated on that curve with
   ``np.interp`` semantics (where several points share one FP value, the last
   of them; below the first point, the first point); a level beyond the end of
   the curve takes the curve's last sensitivity. No predictions at all (or no
   lesions at all) gives zero sensitivity everywhere.

Breakdowns (lesion size, type, slice interval) keep *all* predictions and all
images but count only the lesions of one group (``gt_in_group``): the
sensitivity's denominator is the group's lesions, and a prediction that hits a
lesion of another group is neither a hit of the group nor a false positive (it
found a real lesion). The FPs per image are therefore the same for every group,
so the groups' sensitivities are read at the same operating points as the
overall one. This is our choice for a question the published protocol leaves
open; it never calls a correct detection a false positive.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np

#: FP-per-image levels of the papers' tables (A3D Tables 2-3).
FP_LEVELS: tuple[float, ...] = (0.5, 1, 2, 4, 8, 16)
#: Levels averaged into the papers' "Avg." column.
AVG_FP_LEVELS: tuple[float, ...] = (0.5, 1, 2, 4)
#: Default overlap threshold per criterion.
DEFAULT_THR: dict[str, float] = {'iou': 0.5, 'iobb': 0.3}
CRITERIA: tuple[str, ...] = tuple(DEFAULT_THR)


def resolve_thr(criterion: str, thr: float | None) -> float:
    """The overlap threshold: ``thr`` or the criterion's default.

    Raises:
        ValueError: unknown criterion or a threshold outside (0, 1].
    """
    if criterion not in DEFAULT_THR:
        raise ValueError(f'criterion must be one of {CRITERIA}, '
                         f'got {criterion!r}')
    thr = DEFAULT_THR[criterion] if thr is None else float(thr)
    if not 0.0 < thr <= 1.0:
        raise ValueError(f'overlap threshold must be in (0, 1], got {thr}')
    return thr


def check_fp_levels(fp_levels: Sequence[float]) -> tuple[float, ...]:
    """FP-per-image levels as a tuple of floats.

    Raises:
        ValueError: no level, or a level that is not positive.
    """
    levels = tuple(float(lv) for lv in fp_levels)
    if not levels or not all(lv > 0 for lv in levels):
        raise ValueError(f'FP levels must be positive numbers, got '
                         f'{list(fp_levels)}')
    return levels


def box_overlaps(boxes: np.ndarray, gts: np.ndarray,
                 criterion: str = 'iou') -> np.ndarray:
    """Element-wise overlap of ``boxes[k]`` with ``gts[k]``, inclusive pixels.

    Args:
        boxes: (K, 4) predicted ``x1, y1, x2, y2``.
        gts: (K, 4) lesion boxes, paired row by row with ``boxes``.
        criterion: ``'iou'`` (intersection over union) or ``'iobb'``
            (intersection over the predicted box).

    Returns:
        (K,) float64 overlaps. Widths and heights are ``x2 - x1 + 1`` as in
        DeepLesion's evaluation code.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    gts = np.asarray(gts, dtype=np.float64)
    iw = np.maximum(np.minimum(gts[:, 2], boxes[:, 2]) -
                    np.maximum(gts[:, 0], boxes[:, 0]) + 1., 0.)
    ih = np.maximum(np.minimum(gts[:, 3], boxes[:, 3]) -
                    np.maximum(gts[:, 1], boxes[:, 1]) + 1., 0.)
    inters = iw * ih
    area = (boxes[:, 2] - boxes[:, 0] + 1.) * (boxes[:, 3] - boxes[:, 1] + 1.)
    if criterion == 'iobb':
        return inters / area
    if criterion != 'iou':
        raise ValueError(f'criterion must be one of {CRITERIA}, '
                         f'got {criterion!r}')
    union = area + (gts[:, 2] - gts[:, 0] + 1.) * (gts[:, 3] - gts[:, 1] + 1.) \
        - inters
    return inters / union


def pairwise_overlaps(boxes: np.ndarray, gts: np.ndarray,
                      criterion: str = 'iou') -> np.ndarray:
    """Overlap of every box with every lesion, inclusive pixels (as
    :func:`box_overlaps`, the convention FROC counts hits with).

    Args:
        boxes: (N, 4) predicted ``x1, y1, x2, y2``.
        gts: (M, 4) lesion boxes.
        criterion: ``'iou'`` or ``'iobb'``.

    Returns:
        (N, M) float64 overlaps.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    gts = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
    n, m = len(boxes), len(gts)
    return box_overlaps(np.repeat(boxes, m, axis=0), np.tile(gts, (n, 1)),
                        criterion).reshape(n, m)


def _stack(arrays: Sequence, width: int, name: str) -> tuple[np.ndarray,
                                                             np.ndarray]:
    """Concatenate per-image (n_i, width) arrays; return (sum n_i, width), (n,)."""
    parts, counts = [], np.zeros(len(arrays), dtype=np.int64)
    for i, a in enumerate(arrays):
        a = np.asarray(a, dtype=np.float64)
        if a.size == 0:
            a = a.reshape(0, width)
        if a.ndim != 2 or a.shape[1] != width:
            raise ValueError(f'{name}[{i}] must have shape (N, {width}), '
                             f'got {a.shape}')
        parts.append(a)
        counts[i] = len(a)
    cat = np.concatenate(parts) if parts else np.zeros((0, width))
    return cat, counts


@dataclass
class LesionMatching:
    """Predictions of all images matched to lesions (steps 1-3 of the protocol).

    Attributes:
        is_fp: (P,) bool, in descending score order: the prediction hits no
            lesion of its image.
        first_hit: (G,) int64, for every lesion (images concatenated in
            order) the rank of the first prediction that finds it, or ``P``
            when none does.
        num_images: number of images.
    """
    is_fp: np.ndarray
    first_hit: np.ndarray
    num_images: int

    def curve(self, gt_in_group: Sequence[np.ndarray] | np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """The FROC curve, counting only the lesions in ``gt_in_group``.

        Args:
            gt_in_group: None (all lesions), a (G,) bool array, or one (M_i,)
                bool array per image.

        Returns:
            ``(sensitivity, fp_per_image)``: two (P,) float64 arrays, one
            point after each prediction in descending score order.
        """
        num_preds = len(self.is_fp)
        first = self.first_hit
        if gt_in_group is not None:
            if isinstance(gt_in_group, (list, tuple)):
                parts = [np.asarray(m, dtype=bool).reshape(-1)
                         for m in gt_in_group]
                mask = (np.concatenate(parts) if parts
                        else np.zeros(0, dtype=bool))
            else:
                mask = np.asarray(gt_in_group, dtype=bool).reshape(-1)
            if mask.shape != first.shape:
                raise ValueError(f'gt_in_group selects among {mask.shape[0]} '
                                 f'lesions, there are {first.shape[0]}')
            first = first[mask]
        num_gt = len(first)
        if num_preds == 0 or num_gt == 0:
            return np.zeros(num_preds), np.cumsum(self.is_fp) / max(
                self.num_images, 1)
        found = np.bincount(first[first < num_preds], minlength=num_preds)
        sens = np.cumsum(found) / num_gt
        fp_per_img = np.cumsum(self.is_fp) / self.num_images
        return sens, fp_per_img


def match_lesions(pred_boxes: Sequence[np.ndarray],
                  gt_boxes: Sequence[np.ndarray],
                  iou_thr: float | None = None,
                  criterion: str = 'iou') -> LesionMatching:
    """Match all predictions to lesions at once (no loop over predictions).

    Args:
        pred_boxes: one (N_i, 5) array ``[x1, y1, x2, y2, score]`` per image.
        gt_boxes: one (M_i, 4) array ``[x1, y1, x2, y2]`` per image.
        iou_thr: overlap threshold; None takes 0.5 for IoU, 0.3 for IoBB.
        criterion: ``'iou'`` or ``'iobb'``.
    """
    thr = resolve_thr(criterion, iou_thr)
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f'{len(pred_boxes)} images of predictions but '
                         f'{len(gt_boxes)} images of ground truth')
    preds, n_pred = _stack(pred_boxes, 5, 'pred_boxes')
    gts, n_gt = _stack(gt_boxes, 4, 'gt_boxes')
    num_preds = len(preds)
    # Step 1: one global ranking, highest score first (stable on ties).
    img_of_pred = np.repeat(np.arange(len(n_pred)), n_pred)
    order = np.argsort(-preds[:, 4], kind='stable')
    preds, img_of_pred = preds[order], img_of_pred[order]
    # Every (prediction, lesion of the same image) pair, grouped by prediction
    # rank: pair_pred is non-decreasing.
    gt_start = np.cumsum(n_gt) - n_gt
    pairs_per_pred = n_gt[img_of_pred]
    pair_pred = np.repeat(np.arange(num_preds), pairs_per_pred)
    pair_start = np.cumsum(pairs_per_pred) - pairs_per_pred
    pair_gt = (gt_start[img_of_pred][pair_pred] +
               np.arange(len(pair_pred)) - pair_start[pair_pred])
    # Steps 2-3: a pair is a hit when its overlap reaches the threshold.
    hit = box_overlaps(preds[pair_pred, :4], gts[pair_gt], criterion) >= thr
    hit_pred, hit_gt = pair_pred[hit], pair_gt[hit]
    is_fp = np.ones(num_preds, dtype=bool)
    is_fp[hit_pred] = False
    first_hit = np.full(len(gts), num_preds, dtype=np.int64)
    # hit_pred is sorted, so a lesion's first occurrence is its first finder.
    lesions, first_idx = np.unique(hit_gt, return_index=True)
    first_hit[lesions] = hit_pred[first_idx]
    return LesionMatching(is_fp=is_fp, first_hit=first_hit,
                          num_images=len(n_pred))


def froc_curve(pred_boxes: Sequence[np.ndarray],
               gt_boxes: Sequence[np.ndarray],
               iou_thr: float | None = None,
               criterion: str = 'iou',
               gt_in_group: Sequence[np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The FROC curve of the DeepLesion protocol (see the module docstring).

    Args:
        pred_boxes: one (N_i, 5) array ``[x1, y1, x2, y2, score]`` per image;
            images may have no prediction.
        gt_boxes: one (M_i, 4) array per image; images may have no lesion.
        iou_thr: overlap threshold; None takes 0.5 for IoU, 0.3 for IoBB.
        criterion: ``'iou'`` or ``'iobb'``.
        gt_in_group: optional, one (M_i,) bool array per image: count only
            these lesions (breakdowns); predictions hitting other lesions are
            not false positives.

    Returns:
        ``(sensitivity, fp_per_image)``: two (P,) float64 arrays with one
        point per prediction, in descending score order over all images.
    """
    return match_lesions(pred_boxes, gt_boxes, iou_thr,
                         criterion).curve(gt_in_group)


def interp_sens(sens: np.ndarray, fp_per_img: np.ndarray,
                fp_levels: Sequence[float] = FP_LEVELS) -> np.ndarray:
    """Sensitivity at FP levels, read off a FROC curve (protocol step 5).

    Linear interpolation with ``np.interp`` semantics on the non-decreasing
    ``fp_per_img``: where several points share one FP value, the last one;
    below the first point, the first point's sensitivity; beyond the last
    point, the last sensitivity. An empty curve gives zeros.

    Args:
        sens: (P,) sensitivities. fp_per_img: (P,) FPs per image.
        fp_levels: (L,) FP-per-image levels.

    Returns:
        (L,) float64 sensitivities.
    """
    levels = np.asarray(fp_levels, dtype=np.float64).reshape(-1)
    if len(sens) == 0:
        return np.zeros(len(levels))
    # j = the last point with fp <= level (-1 when the level is below them all)
    j = np.searchsorted(fp_per_img, levels, side='right') - 1
    jc = np.clip(j, 0, len(sens) - 1)
    nxt = np.minimum(jc + 1, len(sens) - 1)
    x0, x1 = fp_per_img[jc], fp_per_img[nxt]
    y0, y1 = sens[jc], sens[nxt]
    # the same arithmetic as np.interp: slope * (x - x0) + y0
    with np.errstate(divide='ignore', invalid='ignore'):
        slope = (y1 - y0) / (x1 - x0)
        out = np.where(x1 > x0, slope * (levels - x0) + y0, y0)
    out[j < 0] = sens[0]
    out[j >= len(sens) - 1] = sens[-1]
    return out


def sens_at_fp(pred_boxes: Sequence[np.ndarray],
               gt_boxes: Sequence[np.ndarray],
               fp_levels: Sequence[float] = FP_LEVELS,
               iou_thr: float | None = None,
               criterion: str = 'iou',
               gt_in_group: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Sensitivity at each FP-per-image level, the DeepLesion protocol.

    Args:
        pred_boxes, gt_boxes, iou_thr, criterion, gt_in_group: as in
            :func:`froc_curve`.
        fp_levels: (L,) FPs per image, default 0.5, 1, 2, 4, 8, 16.

    Returns:
        (L,) float64 sensitivities (fractions); zeros when there is no
        prediction or no lesion at all.
    """
    sens, fp_per_img = froc_curve(pred_boxes, gt_boxes, iou_thr, criterion,
                                  gt_in_group)
    return interp_sens(sens, fp_per_img, fp_levels)
