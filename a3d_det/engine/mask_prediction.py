"""Whether the runner's validation and test loops need predicted masks.

The detector (``LesionMaskRCNN(with_mask_in_val=False)``) skips the mask head
in ``val_step``/``test_step``: the FROC metric reads boxes and scores only.
:func:`enable_masks_if_needed` turns masks on in a config when something
in the run reads them:

* a ``LesionVisualizationHook`` drawing masks (``--show-dir`` adds one);
* a metric of ``val_evaluator`` or ``test_evaluator`` whose class sets
  ``requires_masks = True``.
"""
from __future__ import annotations

import inspect
from typing import Any

from mmengine.config import Config

from a3d_det.registry import METRICS, MODELS

__all__ = ['masks_needed', 'enable_masks_if_needed']

_VISUALIZATION_HOOK = 'LesionVisualizationHook'


def _short_type(entry: Any) -> str:
    kind = entry.get('type', '') if isinstance(entry, dict) else type(entry).__name__
    return kind.split('.')[-1] if isinstance(kind, str) else getattr(kind, '__name__', '')


def _metric_entries(cfg: Config) -> list:
    entries = []
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(key)
        if isinstance(evaluator, dict) and 'metrics' in evaluator:
            evaluator = evaluator['metrics']
        if evaluator is not None:
            entries += list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
    return entries


def masks_needed(cfg: Config) -> bool:
    """Does a hook or metric of ``cfg`` read ``pred_instances.masks``?"""
    for hook in cfg.get('custom_hooks') or []:
        if _short_type(hook) == _VISUALIZATION_HOOK and hook.get('draw_masks', True):
            return True
    for metric in _metric_entries(cfg):
        cls = metric if isinstance(metric, type) else (
            METRICS.get(metric['type']) if isinstance(metric, dict)
            and isinstance(metric.get('type'), str) else type(metric))
        if getattr(cls, 'requires_masks', False):
            return True
    return False


def enable_masks_if_needed(cfg: Config) -> bool:
    """Set ``cfg.model.with_mask_in_val = True`` when :func:`masks_needed`.

    Only for a model whose class takes ``with_mask_in_val``; a config that
    already asks for masks is left as it is.

    Returns:
        Whether the loops of this run predict masks.
    """
    model = cfg.get('model')
    if not isinstance(model, dict):
        return False
    model_cls = MODELS.get(model.get('type')) if isinstance(model.get('type'), str) else None
    if model_cls is None or 'with_mask_in_val' not in inspect.signature(model_cls).parameters:
        return False
    if masks_needed(cfg):
        model['with_mask_in_val'] = True
    return bool(model.get('with_mask_in_val', False))
