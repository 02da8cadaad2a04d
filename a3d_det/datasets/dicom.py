"""Reading a patient's CT for inference (kept for imports of
``a3d_det.datasets.dicom``; the readers live in
:mod:`a3d_det.datasets.ct_series`)."""
from __future__ import annotations

from a3d_det.datasets.ct_series import (CTSeries, SeriesError, SeriesWarning,  # noqa: F401
                                        read_ct_series, read_dicom_series, read_nifti_series,
                                        read_png_series)

__all__ = ['SeriesError', 'SeriesWarning', 'CTSeries', 'read_ct_series',
           'read_dicom_series', 'read_png_series', 'read_nifti_series']
