"""Reading a patient's CT for inference: DICOM (classic, compressed and
enhanced multi-frame), NIfTI, or DeepLesion-style 16-bit PNG slices.

Every reader returns a :class:`CTSeries`. Bad input raises
:class:`SeriesError` with a message naming the file or the problem;
``tools/infer.py`` prints it as one line. Recoverable oddities (skipped
files, irregular slice increments) are recorded in ``CTSeries.notes`` and
also emitted as :class:`SeriesWarning`.
"""
from __future__ import annotations

from a3d_det.datasets.ct_series.dicom_decode import decode_frames, frame_to_hu
from a3d_det.datasets.ct_series.dicom_frames import DicomFrame, expand_frames
from a3d_det.datasets.ct_series.dicom_order import (check_positions, dicom_affine, order_frames,
                                                    slice_interval)
from a3d_det.datasets.ct_series.dicom_reader import read_dicom_series
from a3d_det.datasets.ct_series.dicom_select import list_files, read_headers, select_series
from a3d_det.datasets.ct_series.nifti import DISPLAY_AXCODES, is_nifti, read_nifti_series
from a3d_det.datasets.ct_series.png import read_png_series
from a3d_det.datasets.ct_series.reader import read_ct_series
from a3d_det.datasets.ct_series.series import LPS_TO_RAS, CTSeries, SeriesError, SeriesWarning

__all__ = [
    'CTSeries', 'SeriesError', 'SeriesWarning', 'LPS_TO_RAS', 'read_ct_series',
    'read_dicom_series', 'read_png_series', 'read_nifti_series', 'is_nifti',
    'DISPLAY_AXCODES', 'list_files', 'read_headers', 'select_series',
    'DicomFrame', 'expand_frames', 'order_frames', 'check_positions',
    'slice_interval', 'dicom_affine', 'decode_frames', 'frame_to_hu',
]
