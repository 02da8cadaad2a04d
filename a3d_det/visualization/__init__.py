"""Overlays of detections on CT slices (Fig. 3 of the paper) and the test hook."""
from .lesion_overlay import COLORS, DISPLAY_WINDOW, draw_lesions, window_image  # noqa: F401
from .lesion_visualization_hook import LesionVisualizationHook  # noqa: F401
from .froc_curve import plot_froc_curves  # noqa: F401
