"""Reading and writing DeepLesion's ``DL_info.csv``.

One row per lesion, 18 columns; all pixel coordinates are 1-based. Several
rows share a key image. This module turns rows into validated records with
0-based coordinates; a malformed row is an error naming the file and line.
"""
from __future__ import annotations

import csv
import math
import os.path as osp
from typing import Any
from collections.abc import Iterator

import numpy as np

from a3d_det.datasets.deeplesion import split_file_name

#: The 18 columns of DL_info.csv, in the release's order.
DL_INFO_COLUMNS = (
    'File_name', 'Patient_index', 'Study_index', 'Series_ID', 'Key_slice_index',
    'Measurement_coordinates', 'Bounding_boxes', 'Lesion_diameters_Pixel_',
    'Normalized_lesion_location', 'Coarse_lesion_type', 'Possibly_noisy',
    'Slice_range', 'Spacing_mm_px_', 'Image_size', 'DICOM_windows',
    'Patient_gender', 'Patient_age', 'Train_Val_Test')

#: Train_Val_Test value of each split.
SPLITS = {'train': 1, 'val': 2, 'test': 3}


class DLInfoError(ValueError):
    """A malformed DL_info.csv (the message names the file and the line)."""


def _floats(text: str, n: int, what: str) -> np.ndarray:
    parts = [p.strip() for p in text.split(',')]
    if len(parts) != n:
        raise ValueError(f'{what}: expected {n} comma-separated numbers, got {text!r}')
    try:
        vals = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise ValueError(f'{what}: not numbers: {text!r}') from None
    return vals


def _int(text: str, what: str) -> int:
    try:
        val = float(text)
    except ValueError:
        raise ValueError(f'{what}: not an integer: {text!r}') from None
    if not math.isfinite(val) or val != int(val):
        raise ValueError(f'{what}: not an integer: {text!r}')
    return int(val)


def parse_dl_info_row(row: dict[str, str]) -> dict[str, Any]:
    """Validate one DL_info row and convert it to a lesion record.

    Returns:
        dict with ``file_name`` (``PPPPPP_SS_RR/NNN.png``), ``key_index``,
        ``patient``, ``study``, ``series``, ``recist`` float32 (8,) 0-based,
        ``bbox`` float32 (4,) 0-based x1y1x2y2, ``diameters_px`` (2,),
        ``lesion_type`` int (-1 unknown), ``noisy`` bool, ``slice_range``
        (first, last), ``spacing`` (x, y, z) mm, ``image_size`` (H, W),
        ``dicom_window`` (lo, hi), ``gender``, ``age`` (NaN if unknown),
        ``split`` 1 | 2 | 3.

    Raises:
        ValueError: a field is missing or malformed (message names it).
    """
    folder, index = split_file_name(row['File_name'].strip())
    recist = _floats(row['Measurement_coordinates'], 8, 'Measurement_coordinates')
    bbox = _floats(row['Bounding_boxes'], 4, 'Bounding_boxes')
    if not np.all(np.isfinite(bbox)) or bbox[2] < bbox[0] or bbox[3] < bbox[1]:
        raise ValueError(f'Bounding_boxes: need finite x1 <= x2 and y1 <= y2, got {row["Bounding_boxes"]!r}')
    if not np.all(np.isfinite(recist)):
        raise ValueError(f'Measurement_coordinates: not finite: {row["Measurement_coordinates"]!r}')
    spacing = _floats(row['Spacing_mm_px_'], 3, 'Spacing_mm_px_')
    if not (spacing[0] > 0 and spacing[1] > 0):
        raise ValueError(f'Spacing_mm_px_: in-plane spacing must be positive, got {row["Spacing_mm_px_"]!r}')
    size = _floats(row['Image_size'], 2, 'Image_size')
    if not np.all(size >= 1) or not np.all(size == np.round(size)):
        raise ValueError(f'Image_size: expected two positive integers, got {row["Image_size"]!r}')
    noisy = _int(row['Possibly_noisy'], 'Possibly_noisy')
    if noisy not in (0, 1):
        raise ValueError(f'Possibly_noisy: expected 0 or 1, got {row["Possibly_noisy"]!r}')
    split = _int(row['Train_Val_Test'], 'Train_Val_Test')
    if split not in (1, 2, 3):
        raise ValueError(f'Train_Val_Test: expected 1, 2 or 3, got {row["Train_Val_Test"]!r}')
    age_text = row['Patient_age'].strip()
    try:
        age = float(age_text) if age_text else math.nan
    except ValueError:
        raise ValueError(f'Patient_age: not a number: {age_text!r}') from None
    diam = _floats(row['Lesion_diameters_Pixel_'], 2, 'Lesion_diameters_Pixel_')
    slice_range = _floats(row['Slice_range'], 2, 'Slice_range')
    return dict(
        file_name=f'{folder}/{index:03d}.png',
        key_index=_int(row['Key_slice_index'], 'Key_slice_index'),
        patient=_int(row['Patient_index'], 'Patient_index'),
        study=_int(row['Study_index'], 'Study_index'),
        series=_int(row['Series_ID'], 'Series_ID'),
        recist=(recist - 1).astype(np.float32),
        bbox=(bbox - 1).astype(np.float32),
        diameters_px=diam.astype(np.float32),
        location=_floats(row['Normalized_lesion_location'], 3,
                         'Normalized_lesion_location').astype(np.float32),
        lesion_type=_int(row['Coarse_lesion_type'], 'Coarse_lesion_type'),
        noisy=bool(noisy),
        slice_range=(int(slice_range[0]), int(slice_range[1])),
        spacing=tuple(float(s) for s in spacing),
        image_size=(int(size[0]), int(size[1])),
        dicom_window=tuple(float(w) for w in _floats(row['DICOM_windows'], 2, 'DICOM_windows')),
        gender=row['Patient_gender'].strip(),
        age=age,
        split=split,
    )


def iter_dl_info(path: str, strict: bool = True) -> Iterator[tuple[int, dict | None, str | None]]:
    """Iterate over the rows of a DL_info.csv.

    Args:
        path: the CSV file.
        strict: raise :class:`DLInfoError` on the first malformed row;
            otherwise yield ``(line, None, message)`` for it and go on.

    Yields:
        ``(line, record, None)`` per good row (``line`` is the 1-based line
        number in the file, the header being line 1).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: DL_info file not found')
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in DL_INFO_COLUMNS if c not in header]
        if missing:
            raise DLInfoError(f'{path}: not a DL_info.csv, missing columns {missing}')
        for row in reader:
            line = reader.line_num
            try:
                if None in row or any(row.get(c) is None for c in DL_INFO_COLUMNS):
                    raise ValueError(f'expected {len(header)} fields')
                rec = parse_dl_info_row(row)
            except ValueError as e:
                msg = f'{path}, line {line} ({(row.get("File_name") or "").strip()}): {e}'
                if strict:
                    raise DLInfoError(msg) from None
                yield line, None, msg
                continue
            yield line, rec, None


def _fmt(vals) -> str:
    return ', '.join(f'{float(v):.6g}' for v in vals)


def format_dl_info_row(rec: dict[str, Any]) -> dict[str, str]:
    """Inverse of :func:`parse_dl_info_row`: a record (0-based) -> CSV fields (1-based)."""
    folder, index = split_file_name(rec['file_name'])
    age = rec.get('age', math.nan)
    return {
        'File_name': f'{folder}_{index:03d}.png',
        'Patient_index': str(rec['patient']),
        'Study_index': str(rec['study']),
        'Series_ID': str(rec['series']),
        'Key_slice_index': str(index),
        'Measurement_coordinates': _fmt(np.asarray(rec['recist']) + 1),
        'Bounding_boxes': _fmt(np.asarray(rec['bbox']) + 1),
        'Lesion_diameters_Pixel_': _fmt(rec['diameters_px']),
        'Normalized_lesion_location': _fmt(rec['location']),
        'Coarse_lesion_type': str(rec['lesion_type']),
        'Possibly_noisy': str(int(rec['noisy'])),
        'Slice_range': _fmt(rec['slice_range']),
        'Spacing_mm_px_': _fmt(rec['spacing']),
        'Image_size': _fmt(rec['image_size']),
        'DICOM_windows': _fmt(rec['dicom_window']),
        'Patient_gender': rec.get('gender', ''),
        'Patient_age': 'NaN' if not math.isfinite(age) else f'{age:g}',
        'Train_Val_Test': str(rec['split']),
    }


def write_dl_info(path: str, records: list[dict[str, Any]]) -> None:
    """Write lesion records as a DL_info.csv (18 columns, 1-based)."""
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(DL_INFO_COLUMNS))
        writer.writeheader()
        for rec in records:
            writer.writerow(format_dl_info_row(rec))
