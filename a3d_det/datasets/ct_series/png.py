"""DeepLesion-style folders of 16-bit PNG slices (HU = value - 32768)."""
from __future__ import annotations

import os
import os.path as osp
import re

import numpy as np

from a3d_det.datasets.ct_series.series import LPS_TO_RAS, CTSeries, SeriesError, note, stack_slices
from a3d_det.datasets.deeplesion import SliceReadError, read_png_hu

__all__ = ['read_png_series']


def read_png_series(folder: str, slice_interval: float | None,
                    spacing: float | None = None) -> CTSeries:
    """Read a folder of DeepLesion-style 16-bit PNG slices (HU = value - 32768).

    Slices are ordered by the number in their file names (``001.png``,
    ``002.png``, ...), as in DeepLesion's ``Images_png/PPPPPP_SS_RR/``;
    files that are not PNG are skipped with a note.

    Args:
        folder: the folder of slices.
        slice_interval: slice interval in mm (PNG files do not carry it).
        spacing: in-plane spacing in mm/px, or ``None`` when unknown.
    """
    if slice_interval is None:
        raise SeriesError(f'{folder}: PNG slices carry no slice interval; '
                          'give it (--slice-interval MM)')
    if not slice_interval > 0:
        raise SeriesError(f'slice interval must be positive, got {slice_interval}')
    notes: list[str] = []
    pngs, others = [], []
    for name in sorted(os.listdir(folder)):
        full = osp.join(folder, name)
        if not osp.isfile(full):
            continue
        (pngs if name.lower().endswith('.png') else others).append(name)
    if others:
        note(notes, f'skipped {len(others)} non-PNG file(s) in {folder}: '
             + ', '.join(others[:5]) + (' ...' if len(others) > 5 else ''))

    def number(name: str) -> tuple[int, str]:
        digits = re.findall(r'\d+', osp.splitext(name)[0])
        return (int(digits[-1]) if digits else -1, name)

    pngs.sort(key=number)
    slices, files = [], []
    for name in pngs:
        full = osp.join(folder, name)
        try:
            slices.append(read_png_hu(full))  # HU = value - 32768
        except SliceReadError as e:
            raise SeriesError(str(e)) from None
        files.append(full)
    volume = stack_slices(slices, files)
    n = volume.shape[0]
    # Axial slices assumed: columns along patient left, rows posterior,
    # slices superior (DICOM's usual axial display), origin at 0.
    sp = float(spacing) if spacing is not None else 1.0
    affine = LPS_TO_RAS @ np.diag([sp, sp, float(slice_interval), 1.0])
    return CTSeries(
        volume=volume,
        spacing=float(spacing) if spacing is not None else None,
        pixel_spacing=(float(spacing), float(spacing)) if spacing is not None else None,
        slice_interval=float(slice_interval),
        z_mm=np.arange(n, dtype=np.float64) * float(slice_interval),
        sop_instance_uids=[None] * n,
        files=files,
        series_uid=osp.basename(osp.normpath(folder)),
        notes=notes,
        affine=affine)
