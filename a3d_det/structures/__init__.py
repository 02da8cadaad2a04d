from .lesion_data_sample import LesionDataSample

__all__ = ['LesionDataSample']
