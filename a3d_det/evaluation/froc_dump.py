"""The FROC dump: detections with their ground truth, for offline evaluation.

``DeepLesionFROCMetric(dump_file=PATH)`` writes it (rank 0 only) and
``tools/analysis/eval_froc.py`` / ``plot_froc.py`` read it. JSON, schema::

    {
      "format": "a3d_det.froc_dump",
      "version": 1,
      "images": [                               # one entry per key image
        {
          "file_name": "000001_01_01/103.png",  # str ("" when unknown)
          "slice_interval": 5.0,                # mm, or null
          "pred_bboxes": [[x1, y1, x2, y2], ...],  # (N, 4) 0-based original pixels
          "pred_scores": [0.97, ...],           # (N,)
          "gt_bboxes": [[x1, y1, x2, y2], ...],    # (M, 4) 0-based original pixels
          "gt_diameters_mm": [12.3, ...],       # (M,) RECIST long axis, or null
          "gt_lesion_types": [5, ...]           # (M,) Coarse_lesion_type, or null
        }
      ]
    }

In memory, an *image record* is the same dict with numpy arrays
(``pred_bboxes`` float64 (N, 4), ``pred_scores`` (N,), ``gt_bboxes`` (M, 4),
``gt_diameters_mm`` (M,) float64 or None, ``gt_lesion_types`` (M,) int64 or
None, ``slice_interval`` float or None).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import tempfile
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

DUMP_FORMAT = 'a3d_det.froc_dump'
DUMP_VERSION = 1


class FROCDumpError(ValueError):
    """A FROC dump file is missing, unreadable or not in the schema."""


def _to_list(value: Any) -> Any:
    if value is None:
        return None
    return np.asarray(value).tolist()


def image_record(file_name: str, pred_bboxes: Any, pred_scores: Any,
                 gt_bboxes: Any, slice_interval: float | None = None,
                 gt_diameters_mm: Any = None, gt_lesion_types: Any = None
                 ) -> dict:
    """Build a validated image record (numpy arrays, see the module docstring).

    Raises:
        ValueError: shapes that disagree, naming the image.
    """
    pb = np.asarray(pred_bboxes, dtype=np.float64)
    pb = pb.reshape(0, 4) if pb.size == 0 else pb
    ps = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    gb = np.asarray(gt_bboxes, dtype=np.float64)
    gb = gb.reshape(0, 4) if gb.size == 0 else gb
    if pb.ndim != 2 or pb.shape[1] != 4 or len(ps) != len(pb):
        raise ValueError(f'image {file_name!r}: pred_bboxes {pb.shape} and '
                         f'pred_scores {ps.shape} must be (N, 4) and (N,)')
    if gb.ndim != 2 or gb.shape[1] != 4:
        raise ValueError(f'image {file_name!r}: gt_bboxes must be (M, 4), '
                         f'got {gb.shape}')
    rec = dict(file_name=str(file_name), pred_bboxes=pb, pred_scores=ps,
               gt_bboxes=gb,
               slice_interval=(None if slice_interval is None
                               else float(slice_interval)),
               gt_diameters_mm=None, gt_lesion_types=None)
    for key, value, dtype in (('gt_diameters_mm', gt_diameters_mm, np.float64),
                              ('gt_lesion_types', gt_lesion_types, np.int64)):
        if value is None:
            continue
        arr = np.asarray(value, dtype=dtype).reshape(-1)
        if len(arr) != len(gb):
            raise ValueError(f'image {file_name!r}: {key} has {len(arr)} '
                             f'values for {len(gb)} lesions')
        rec[key] = arr
    return rec


def froc_inputs(images: Sequence[Mapping]
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Image records -> the FROC core's inputs.

    Returns:
        ``(pred_boxes, gt_boxes)``: per image a (N_i, 5) float64 array
        ``[x1, y1, x2, y2, score]`` and a (M_i, 4) float64 array.
    """
    preds = [np.hstack([
        np.asarray(im['pred_bboxes'], dtype=np.float64).reshape(-1, 4),
        np.asarray(im['pred_scores'], dtype=np.float64).reshape(-1, 1)])
        for im in images]
    gts = [np.asarray(im['gt_bboxes'], dtype=np.float64).reshape(-1, 4)
           for im in images]
    return preds, gts


def save_froc_dump(path: str, images: Sequence[Mapping]) -> None:
    """Write image records to ``path`` as JSON (atomically: temp + rename)."""
    payload = dict(format=DUMP_FORMAT, version=DUMP_VERSION, images=[
        dict(file_name=im.get('file_name', ''),
             slice_interval=im.get('slice_interval'),
             pred_bboxes=_to_list(im['pred_bboxes']),
             pred_scores=_to_list(im['pred_scores']),
             gt_bboxes=_to_list(im['gt_bboxes']),
             gt_diameters_mm=_to_list(im.get('gt_diameters_mm')),
             gt_lesion_types=_to_list(im.get('gt_lesion_types')))
        for im in images])
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(payload, f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def load_froc_dump(path: str) -> list[dict]:
    """Read a dump written by :func:`save_froc_dump`.

    Returns:
        Image records with numpy arrays.

    Raises:
        FROCDumpError: missing file, invalid JSON or wrong schema; the message
            names the file and the problem.
    """
    try:
        with open(path) as f:
            payload = json.load(f)
    except FileNotFoundError:
        raise FROCDumpError(f'{path}: no such file') from None
    except IsADirectoryError:
        raise FROCDumpError(f'{path}: is a directory, not a dump file') \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FROCDumpError(f'{path}: not a valid JSON FROC dump ({e})') \
            from None
    if not isinstance(payload, dict) or payload.get('format') != DUMP_FORMAT:
        raise FROCDumpError(f'{path}: not a FROC dump (expected "format": '
                            f'"{DUMP_FORMAT}")')
    if payload.get('version') != DUMP_VERSION:
        raise FROCDumpError(f'{path}: unsupported dump version '
                            f'{payload.get("version")!r}')
    images = payload.get('images')
    if not isinstance(images, list):
        raise FROCDumpError(f'{path}: "images" must be a list')
    records = []
    for i, im in enumerate(images):
        try:
            records.append(image_record(
                im.get('file_name', ''), im['pred_bboxes'], im['pred_scores'],
                im['gt_bboxes'], im.get('slice_interval'),
                im.get('gt_diameters_mm'), im.get('gt_lesion_types')))
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise FROCDumpError(f'{path}: image {i} is malformed ({e!r})') \
                from None
    return records
