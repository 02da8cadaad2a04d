"""Names of the FROC summary: ``sens@0.5`` ... ``sens@16`` and ``avg[0.5-4]``
(the A3D paper's Tables 2-3 columns, Sec. 3), defined here once for the
metric, ``tools/test.py --json-out`` and ``tools/analysis/results_table.py``."""
from __future__ import annotations

from typing import Any
from collections.abc import Mapping

from a3d_det.evaluation.froc import FP_LEVELS

__all__ = ['AVG_KEY', 'FROC_KEYS', 'froc_summary', 'sens_key', 'strip_metric_prefix']

#: The papers' "Avg.": mean sensitivity at 0.5, 1, 2 and 4 FPs per image.
AVG_KEY = 'avg[0.5-4]'


def sens_key(level: float) -> str:
    """Metric name of the sensitivity at ``level`` FPs per image."""
    return f'sens@{level:g}'


#: The summary keys of the FROC metric, in table order: sens@0.5 ... sens@16, avg[0.5-4].
FROC_KEYS: tuple[str, ...] = tuple(sens_key(lv) for lv in FP_LEVELS) + (AVG_KEY,)


def strip_metric_prefix(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``{'deeplesion/sens@0.5': x}`` -> ``{'sens@0.5': x}``.

    Only a leading metric prefix goes: breakdown keys such as
    ``sens@4/interval<=2mm`` keep their group.
    """
    def strip(key: str) -> str:
        head, sep, rest = key.partition('/')
        return rest if sep and '@' not in head else key

    return {strip(key): value for key, value in metrics.items()}


def froc_summary(metrics: Mapping[str, Any]) -> dict[str, float]:
    """What ``tools/test.py --json-out`` writes.

    The seven FROC keys (fractions in [0, 1], in table order) when the
    metrics have them all; otherwise every scalar metric, prefix stripped.
    """
    stripped = strip_metric_prefix(metrics)
    if all(key in stripped for key in FROC_KEYS):
        return {key: float(stripped[key]) for key in FROC_KEYS}
    summary = {}
    for key, value in stripped.items():
        try:
            summary[key] = float(value)
        except (TypeError, ValueError):
            continue
    return summary
