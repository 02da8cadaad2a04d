"""Inference on a CT volume from Python: build a detector, detect on key slices."""
from __future__ import annotations

from a3d_det.apis.inference import (build_test_pipeline, inference_detector,  # noqa: F401
                                    init_detector, load_detector_checkpoint)
from a3d_det.apis.lesion_linking import assign_lesions, link_lesions  # noqa: F401
from a3d_det.apis.lesion_pictures import lesion_picture_name, write_lesion_pictures  # noqa: F401
from a3d_det.apis.long_axis import mask_long_axis_mm  # noqa: F401
from a3d_det.apis.mask_volume import (crop_mask, label_image, lesion_label_volume,  # noqa: F401
                                      write_label_volume)
from a3d_det.apis.series_report import (kept_indices, overlay_name, series_report,  # noqa: F401
                                        slice_report, write_overlays)
