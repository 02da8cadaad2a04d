"""Read a patient's CT for inference, whatever form it comes in."""
from __future__ import annotations

import os
import os.path as osp

from a3d_det.datasets.ct_series.dicom_reader import read_dicom_series
from a3d_det.datasets.ct_series.nifti import is_nifti, read_nifti_series
from a3d_det.datasets.ct_series.png import read_png_series
from a3d_det.datasets.ct_series.series import CTSeries, SeriesError

__all__ = ['read_ct_series']


def read_ct_series(path: str,
                   series_uid: str | None = None,
                   slice_interval: float | None = None,
                   spacing: float | None = None) -> CTSeries:
    """Read a CT for inference: a DICOM folder or file, a NIfTI file, or a
    folder of DeepLesion-style PNG slices.

    A ``.nii``/``.nii.gz`` file is read with nibabel
    (:func:`~.nifti.read_nifti_series`); a folder holding ``*.png`` files as
    DeepLesion-style slices (:func:`~.png.read_png_series`); anything else
    as DICOM, compressed and enhanced multi-frame files included
    (:func:`~.dicom_reader.read_dicom_series`).

    Args:
        path: folder or file.
        series_uid: SeriesInstanceUID to pick when a folder holds several.
        slice_interval: slice interval in mm. Required for PNG folders; for
            DICOM and NIfTI it overrides the interval from the geometry.
        spacing: in-plane spacing in mm/px for PNG folders (DICOM and NIfTI
            carry it).

    Raises:
        SeriesError: the input is missing, empty, not CT, ambiguous or
            unreadable.
    """
    if not osp.exists(path):
        raise SeriesError(f'{path}: no such file or folder')
    if osp.isfile(path) and is_nifti(path):
        return read_nifti_series(path, slice_interval=slice_interval)
    if osp.isdir(path):
        names = os.listdir(path)
        if not names:
            raise SeriesError(f'{path}: the folder is empty')
        if any(n.lower().endswith('.png') for n in names):
            return read_png_series(path, slice_interval=slice_interval,
                                   spacing=spacing)
        niftis = [n for n in names if is_nifti(n)]
        if niftis:
            raise SeriesError(f'{path} holds NIfTI file(s) ({", ".join(sorted(niftis)[:3])}); '
                              'give one .nii/.nii.gz file as input')
    return read_dicom_series(path, series_uid=series_uid,
                             slice_interval=slice_interval)
