"""The FROC report: overall and per-group sensitivities, as metrics and a table.

Shared by ``DeepLesionFROCMetric`` and ``tools/analysis/eval_froc.py`` so the
online metric and offline evaluation of a dump give the same numbers.
Metric keys (fractions in [0, 1]): ``sens@0.5`` ... ``sens@16`` and
``avg[0.5-4]`` (the papers' "Avg.", the mean at 0.5, 1, 2 and 4 FPs per
image); per breakdown group the same keys with ``/<group>`` appended, e.g.
``sens@4/interval<=2mm``, for groups that have lesions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence

import numpy as np

from a3d_det.evaluation.froc import (AVG_FP_LEVELS, FP_LEVELS, check_fp_levels, interp_sens,
                                     match_lesions)
from a3d_det.evaluation.froc_dump import froc_inputs
from a3d_det.evaluation.froc_keys import AVG_KEY, sens_key
from a3d_det.evaluation.lesion_groups import lesion_groups


@dataclass
class FROCRow:
    """One line of the report: a group of lesions and its sensitivities."""
    group: str
    num_lesions: int
    sens: np.ndarray  # (L,) at the report's fp_levels
    avg: float  # mean at AVG_FP_LEVELS


@dataclass
class FROCReport:
    """Sensitivities of all lesions (first row) and of breakdown groups."""
    fp_levels: tuple[float, ...]
    rows: list[FROCRow] = field(default_factory=list)
    num_images: int = 0

    def metrics(self) -> dict[str, float]:
        """Flat metric dict (see the module docstring); empty groups omitted."""
        out: dict[str, float] = {}
        for row in self.rows:
            if row.group != 'all' and row.num_lesions == 0:
                continue
            suffix = '' if row.group == 'all' else f'/{row.group}'
            for level, s in zip(self.fp_levels, row.sens):
                out[sens_key(level) + suffix] = float(s)
            out[AVG_KEY + suffix] = float(row.avg)
        return out

    def table(self) -> str:
        """Markdown table in percent, one row per group."""
        head = (['group', 'images', 'lesions'] +
                [f'@{lv:g}' for lv in self.fp_levels] + ['Avg.[0.5-4]'])
        lines = ['| ' + ' | '.join(head) + ' |',
                 '|' + '|'.join(['---'] * len(head)) + '|']
        for row in self.rows:
            if row.num_lesions == 0 and row.group != 'all':
                vals = ['-'] * (len(self.fp_levels) + 1)
            else:
                vals = [f'{100 * s:.2f}' for s in row.sens] + [
                    f'{100 * row.avg:.2f}']
            imgs = str(self.num_images) if row.group == 'all' else ''
            lines.append('| ' + ' | '.join(
                [row.group, imgs, str(row.num_lesions)] + vals) + ' |')
        return '\n'.join(lines)


def evaluate_froc(images: Sequence[Mapping],
                  fp_levels: Sequence[float] = FP_LEVELS,
                  iou_thr: float | None = None,
                  criterion: str = 'iou',
                  breakdowns: Sequence[str] = ()) -> FROCReport:
    """Evaluate image records (see :mod:`a3d_det.evaluation.froc_dump`).

    Predictions are matched once; every group re-counts its own lesions on
    the same matching (all predictions kept, see
    :mod:`a3d_det.evaluation.froc`).

    Args:
        images: records with ``pred_bboxes`` (N, 4), ``pred_scores`` (N,),
            ``gt_bboxes`` (M, 4) and the fields the breakdowns need.
        fp_levels: FP-per-image levels reported.
        iou_thr: overlap threshold, None for the criterion's default.
        criterion: ``'iou'`` or ``'iobb'``.
        breakdowns: any of ``'slice_interval'``, ``'size'``, ``'type'``.
    """
    fp_levels = check_fp_levels(fp_levels)
    pred, gts = froc_inputs(images)
    matching = match_lesions(pred, gts, iou_thr, criterion)
    groups: dict[str, list[np.ndarray] | None] = {'all': None}
    for by in breakdowns:
        groups.update(lesion_groups(by, images))
    report = FROCReport(fp_levels=fp_levels, num_images=len(images))
    for name, mask in groups.items():
        sens, fps = matching.curve(mask)
        num = (sum(len(g) for g in gts) if mask is None
               else int(sum(m.sum() for m in mask)))
        report.rows.append(FROCRow(
            group=name, num_lesions=num, sens=interp_sens(sens, fps, fp_levels),
            avg=float(np.mean(interp_sens(sens, fps, AVG_FP_LEVELS)))))
    return report
