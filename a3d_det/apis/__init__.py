"""Inference on a CT volume from Python: build a detector, detect on key slices."""
from .inference import (build_test_pipeline, inference_detector,  # noqa: F401
                        init_detector, load_detector_checkpoint)
from .lesion_linking import assign_lesions, link_lesions  # noqa: F401
from .lesion_pictures import lesion_picture_name, write_lesion_pictures  # noqa: F401
from .long_axis import mask_long_axis_mm  # noqa: F401
from .mask_volume import (crop_mask, label_image, lesion_label_volume,  # noqa: F401
                          write_label_volume)
from .series_report import (kept_indices, overlay_name, series_report,  # noqa: F401
                            slice_report, write_overlays)
