"""Overlays of detections on CT slices (Fig. 3 of the paper) and the test hook."""
from __future__ import annotations

from a3d_det.visualization.froc_curve import plot_froc_curves  # noqa: F401
from a3d_det.visualization.lesion_overlay import (COLORS, DISPLAY_WINDOW,  # noqa: F401
                                                  draw_lesions, window_image)
from a3d_det.visualization.lesion_visualization_hook import LesionVisualizationHook  # noqa: F401
