"""a3d_det: universal lesion detection on CT with 3D context fusion operators."""
__version__ = '0.1.0'
