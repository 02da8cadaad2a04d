"""Detections on a CT series as a JSON report, plus overlay pictures.

``tools/infer.py`` writes what :func:`series_report` returns as
``detections.json`` and calls :func:`write_overlays` for the pictures::

    {"series": {"uid", "patient_id", "study_uid", "spacing",
                "slice_interval", "n_slices", ...},
     "slices": [{"index", "sop_instance_uid", "z_mm", "file", "overlay",
                 "detections": [{"box": [x1, y1, x2, y2], "score",
                                 "long_axis_mm", "area_mm2"}]}]}

Slices are ordered along z; every processed slice has an entry (an empty
``detections`` list when nothing scores at least the threshold).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from a3d_det.visualization import draw_lesions, window_image
from .long_axis import mask_long_axis_mm

__all__ = ['series_report', 'write_overlays', 'overlay_name']


def overlay_name(index: int) -> str:
    """File name of the overlay of slice ``index``."""
    return f'slice_{index:04d}.png'


def _kept(result: Dict[str, object], score_thr: float) -> np.ndarray:
    """Indices of the detections scoring >= score_thr, best first."""
    scores = np.asarray(result['scores'])
    keep = np.flatnonzero(scores >= score_thr)
    return keep[np.argsort(-scores[keep], kind='stable')]


def series_report(series, results: Sequence[Dict[str, object]],
                  score_thr: float, extra: Optional[dict] = None) -> dict:
    """Build the ``detections.json`` content.

    Args:
        series: the ``CTSeries`` the results come from.
        results: ``inference_detector`` output, one dict per processed slice.
        score_thr: detections scoring below it are left out.
        extra: more top-level keys (e.g. the model and its checkpoint).

    Returns:
        A JSON-serialisable dict (see the module docstring).
    """
    pixel_spacing = series.pixel_spacing
    area_px_mm2 = (pixel_spacing[0] * pixel_spacing[1]) if pixel_spacing else None
    slices: List[dict] = []
    for result in sorted(results, key=lambda r: series.z_mm[r['index']]):
        i = int(result['index'])
        detections = []
        boxes, scores = np.asarray(result['boxes']), np.asarray(result['scores'])
        masks = result.get('masks')
        for j in _kept(result, score_thr):
            mask = masks[j] if masks is not None and len(masks) else None
            area = int(mask.sum()) if mask is not None else None
            detections.append(dict(
                box=[round(float(v), 2) for v in boxes[j]],
                score=round(float(scores[j]), 4),
                long_axis_mm=_round(mask_long_axis_mm(
                    mask if mask is not None else np.zeros((1, 1), bool),
                    pixel_spacing, box=boxes[j])),
                area_mm2=_round(area * area_px_mm2
                                if area is not None and area_px_mm2 else None),
            ))
        slices.append(dict(
            index=i,
            sop_instance_uid=series.sop_instance_uids[i],
            z_mm=round(float(series.z_mm[i]), 4),
            file=osp.basename(series.files[i]),
            overlay=overlay_name(i) if detections else None,
            detections=detections))
    report = dict(series=series.info(), slices=slices)
    report['series']['n_processed'] = len(slices)
    report['score_thr'] = float(score_thr)
    if extra:
        report.update(extra)
    return report


def _round(value: Optional[float], ndigits: int = 2) -> Optional[float]:
    return None if value is None else round(float(value), ndigits)


def write_overlays(series, results: Sequence[Dict[str, object]],
                   score_thr: float, out_dir: str, **draw_kwargs) -> List[str]:
    """Write a Fig. 3-style overlay for every slice with a detection.

    Each picture is the slice in a soft-tissue display window with the kept
    boxes, their scores and masks (:func:`a3d_det.visualization.draw_lesions`).

    Returns:
        The paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for result in results:
        keep = _kept(result, score_thr)
        if not len(keep):
            continue
        i = int(result['index'])
        masks = result.get('masks')
        canvas = draw_lesions(
            window_image(series.volume[i]),
            np.asarray(result['boxes'])[keep],
            np.asarray(result['scores'])[keep],
            masks=np.asarray(masks)[keep] if masks is not None else None,
            **draw_kwargs)
        path = osp.join(out_dir, overlay_name(i))
        if not cv2.imwrite(path, canvas):
            raise OSError(f'cannot write {path}')
        written.append(path)
    return written
