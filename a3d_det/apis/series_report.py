"""Detections on a CT series as a JSON report, plus overlay pictures.

``tools/infer.py`` turns each processed slice into an entry
(:func:`slice_report`, so masks can be dropped as it goes), writes what
:func:`series_report` makes of them as ``detections.json`` and calls
:func:`write_overlays` for the pictures::

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
from collections.abc import Sequence

import cv2
import numpy as np

from a3d_det.apis.long_axis import mask_long_axis_mm
from a3d_det.visualization import draw_lesions, window_image

__all__ = ['slice_report', 'series_report', 'write_overlays', 'overlay_name',
           'kept_indices']


def overlay_name(index: int) -> str:
    """File name of the overlay of slice ``index``."""
    return f'slice_{index:04d}.png'


def kept_indices(result: dict[str, object], score_thr: float) -> np.ndarray:
    """Indices of the detections scoring >= score_thr, best first (the
    order of :func:`slice_report`'s ``detections``)."""
    scores = np.asarray(result['scores'])
    keep = np.flatnonzero(scores >= score_thr)
    return keep[np.argsort(-scores[keep], kind='stable')]


def slice_report(series, result: dict[str, object], score_thr: float) -> dict:
    """The ``detections.json`` entry of one processed slice.

    Args:
        series: the ``CTSeries`` the result comes from.
        result: one ``inference_detector`` output (``index``, ``boxes``,
            ``scores``, ``masks``).
        score_thr: detections scoring below it are left out.

    Returns:
        ``index``, ``sop_instance_uid``, ``z_mm``, ``file``, ``frame`` (the
        1-based frame number, only for a slice of a multi-frame file),
        ``overlay`` (the picture's file name, ``None`` without detections) and
        ``detections``: ``box`` (original pixels), ``score``,
        ``long_axis_mm`` and ``area_mm2`` (from the mask), best first.
    """
    pixel_spacing = series.pixel_spacing
    px_mm2 = pixel_spacing[0] * pixel_spacing[1] if pixel_spacing else None
    i = int(result['index'])
    boxes, scores = np.asarray(result['boxes']), np.asarray(result['scores'])
    masks = result.get('masks')
    detections = []
    for j in kept_indices(result, score_thr):
        mask = np.asarray(masks[j], dtype=bool) if masks is not None else None
        detections.append(dict(
            box=[round(float(v), 4) for v in boxes[j]],
            score=round(float(scores[j]), 4),
            long_axis_mm=_round(mask_long_axis_mm(
                mask if mask is not None else np.zeros((1, 1), bool),
                pixel_spacing, box=boxes[j])),
            area_mm2=_round(float(mask.sum()) * px_mm2
                            if mask is not None and px_mm2 else None),
        ))
    entry = dict(
        index=i,
        sop_instance_uid=series.sop_instance_uids[i],
        z_mm=round(float(series.z_mm[i]), 4),
        file=osp.basename(series.files[i]),
        overlay=overlay_name(i) if detections else None,
        detections=detections)
    frames = getattr(series, 'frames', None)
    if frames is not None and frames[i] is not None:
        entry['frame'] = int(frames[i]) + 1   # DICOM frame number (1-based)
    return entry


def series_report(series, slices: Sequence[dict], score_thr: float,
                  extra: dict | None = None) -> dict:
    """Build the ``detections.json`` content.

    Args:
        series: the ``CTSeries``.
        slices: :func:`slice_report` of every processed slice (any order;
            written ordered along z).
        score_thr: the score threshold used, recorded.
        extra: more top-level keys (e.g. the model and its checkpoint).

    Returns:
        A JSON-serialisable dict (see the module docstring).
    """
    report = dict(series=series.info(), score_thr=float(score_thr),
                  slices=sorted(slices, key=lambda e: series.z_mm[e['index']]))
    report['series']['n_processed'] = len(slices)
    if extra:
        report.update(extra)
    return report


def _round(value: float | None, ndigits: int = 2) -> float | None:
    return None if value is None else round(float(value), ndigits)


def write_overlays(series, results: Sequence[dict[str, object]],
                   score_thr: float, out_dir: str, **draw_kwargs) -> list[str]:
    """Write a Fig. 3-style overlay for every slice with a detection.

    Each picture is the slice in a soft-tissue display window with the kept
    boxes, their scores and masks (:func:`a3d_det.visualization.draw_lesions`).

    Returns:
        The paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for result in results:
        keep = kept_indices(result, score_thr)
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
