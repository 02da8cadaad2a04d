
from .dicom import CTSeries, SeriesError, SeriesWarning, read_ct_series  # noqa: F401
