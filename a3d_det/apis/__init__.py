"""Inference on a CT volume from Python: build a detector, detect on key slices."""
from .inference import (build_test_pipeline, inference_detector,  # noqa: F401
                        init_detector, load_detector_checkpoint)
from .long_axis import mask_long_axis_mm  # noqa: F401
from .series_report import (overlay_name, series_report, slice_report,  # noqa: F401
                            write_overlays)
