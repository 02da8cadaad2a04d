"""FROC evaluation of lesion detection (DeepLesion protocol) and its metric."""
from __future__ import annotations

from a3d_det.evaluation.deeplesion_froc_metric import DeepLesionFROCMetric
from a3d_det.evaluation.froc import (AVG_FP_LEVELS, DEFAULT_THR, FP_LEVELS, LesionMatching,
                                     box_overlaps, froc_curve, interp_sens, match_lesions,
                                     pairwise_overlaps, sens_at_fp)
from a3d_det.evaluation.froc_dump import (FROCDumpError, froc_inputs, image_record, load_froc_dump,
                                          save_froc_dump)
from a3d_det.evaluation.froc_keys import (AVG_KEY, FROC_KEYS, froc_summary, sens_key,
                                          strip_metric_prefix)
from a3d_det.evaluation.froc_report import FROCReport, evaluate_froc
from a3d_det.evaluation.lesion_groups import BREAKDOWNS, LESION_TYPES, lesion_groups

__all__ = [
    'AVG_FP_LEVELS', 'AVG_KEY', 'BREAKDOWNS', 'DEFAULT_THR', 'FP_LEVELS',
    'DeepLesionFROCMetric', 'FROCDumpError', 'FROC_KEYS', 'froc_summary',
    'strip_metric_prefix', 'FROCReport', 'LESION_TYPES',
    'LesionMatching', 'box_overlaps', 'evaluate_froc', 'froc_curve',
    'froc_inputs', 'image_record', 'interp_sens', 'lesion_groups',
    'load_froc_dump', 'match_lesions', 'pairwise_overlaps', 'save_froc_dump', 'sens_at_fp',
    'sens_key'
]
