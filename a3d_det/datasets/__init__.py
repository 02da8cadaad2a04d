"""DeepLesion data: slice IO, the dataset, transforms, GrabCut weak masks, synthetic data."""
from __future__ import annotations

from a3d_det.datasets import transforms  # noqa: F401  (registers the transforms)
from a3d_det.datasets.deeplesion import (DEFAULT_WINDOW, HU_OFFSET, SliceReadError, load_multislice,
                                         read_png_hu, sample_neighbours, windowing)
from a3d_det.datasets.deeplesion_dataset import DeepLesionDataset
from a3d_det.datasets.dl_info import DL_INFO_COLUMNS, DLInfoError, iter_dl_info
from a3d_det.datasets.grabcut import GRABCUT_STATS, GrabCutStats, recist_to_mask
from a3d_det.datasets.mask_rle import decode_mask, encode_rle
from a3d_det.datasets.recist import recist_ellipse_mask
from a3d_det.datasets.skipped_samples import SkippedSamplesError
from a3d_det.datasets.synthetic import make_synthetic_deeplesion
from a3d_det.datasets.synthetic_dataset import SyntheticDeepLesionDataset

__all__ = [
    'DEFAULT_WINDOW', 'HU_OFFSET', 'SliceReadError', 'load_multislice', 'read_png_hu',
    'sample_neighbours', 'windowing', 'DeepLesionDataset', 'DL_INFO_COLUMNS',
    'DLInfoError', 'iter_dl_info', 'GRABCUT_STATS', 'GrabCutStats', 'recist_to_mask',
    'decode_mask', 'encode_rle', 'recist_ellipse_mask', 'SkippedSamplesError',
    'make_synthetic_deeplesion', 'SyntheticDeepLesionDataset',
]
from a3d_det.datasets.dicom import (CTSeries, SeriesError, SeriesWarning,  # noqa: F401,E402
                                    read_ct_series, read_dicom_series, read_nifti_series,
                                    read_png_series)
