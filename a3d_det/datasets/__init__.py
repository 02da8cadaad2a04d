"""DeepLesion data: slice IO, the dataset, transforms, GrabCut weak masks, synthetic data."""
from . import transforms  # noqa: F401  (registers the transforms)
from .deeplesion import (DEFAULT_WINDOW, HU_OFFSET, SliceReadError, load_multislice,
                         read_png_hu, sample_neighbours, windowing)
from .deeplesion_dataset import DeepLesionDataset
from .dl_info import DL_INFO_COLUMNS, DLInfoError, iter_dl_info
from .grabcut import GRABCUT_STATS, GrabCutStats, recist_to_mask
from .mask_rle import decode_mask, encode_rle
from .recist import recist_ellipse_mask
from .skipped_samples import SkippedSamplesError
from .synthetic import make_synthetic_deeplesion
from .synthetic_dataset import SyntheticDeepLesionDataset

__all__ = [
    'DEFAULT_WINDOW', 'HU_OFFSET', 'SliceReadError', 'load_multislice', 'read_png_hu',
    'sample_neighbours', 'windowing', 'DeepLesionDataset', 'DL_INFO_COLUMNS',
    'DLInfoError', 'iter_dl_info', 'GRABCUT_STATS', 'GrabCutStats', 'recist_to_mask',
    'decode_mask', 'encode_rle', 'recist_ellipse_mask', 'SkippedSamplesError',
    'make_synthetic_deeplesion', 'SyntheticDeepLesionDataset',
]
from .dicom import (CTSeries, SeriesError, SeriesWarning, read_ct_series,  # noqa: F401,E402
                    read_dicom_series, read_nifti_series, read_png_series)
