"""a3d_det: universal lesion detection on CT with 3D context fusion operators."""
from __future__ import annotations

__version__ = '0.1.0'
