"""``DeepLesionFROCMetric``: the DeepLesion FROC protocol as an mmengine metric.

Reports the sensitivities of the A3D paper's Tables 2-3 (Sec. 3): ``sens@0.5``,
``sens@1``, ``sens@2``, ``sens@4``, ``sens@8``, ``sens@16`` and
``avg[0.5-4]`` (fractions), plus optional breakdowns (``sens@4/size<10mm``
...). See :mod:`a3d_det.evaluation.froc` for the protocol and
:mod:`a3d_det.evaluation.froc_dump` for the dump file's schema.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from a3d_det.evaluation.froc import FP_LEVELS, check_fp_levels, resolve_thr
from a3d_det.evaluation.froc_dump import image_record, save_froc_dump
from a3d_det.evaluation.froc_report import evaluate_froc
from a3d_det.evaluation.lesion_groups import BREAKDOWNS
from a3d_det.registry import METRICS


def _numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


@METRICS.register_module()
class DeepLesionFROCMetric(BaseMetric):
    """Sensitivity at FPs per image on DeepLesion key slices.

    ``process`` reads, per data sample (a ``LesionDataSample`` or the dict
    mmengine's ``Evaluator`` makes of it with ``to_dict()``):
    ``pred_instances.bboxes`` (N, 4) and ``pred_instances.scores`` (N,) in
    original 0-based pixels, the meta ``ori_gt_bboxes`` (M, 4), and
    ``file_name``, ``slice_interval``, ``gt_diameters_mm``,
    ``gt_lesion_types`` when present (needed only by breakdowns and dumps).
    Results are gathered from all ranks by ``BaseMetric.evaluate``; only rank
    0 computes, prints the table (mmengine logger) and writes ``dump_file``.

    Args:
        fp_levels: FPs per image reported, default 0.5, 1, 2, 4, 8, 16.
        iou_thr: overlap threshold; None = 0.5 (IoU) or 0.3 (IoBB).
        criterion: ``'iou'`` (DeepLesion protocol) or ``'iobb'``.
        breakdowns: any of ``'slice_interval'``, ``'size'``, ``'type'``.
        dump_file: write predictions with ground truth here (JSON), for
            ``tools/analysis/eval_froc.py``.
        collect_device, prefix, collect_dir: see ``mmengine.BaseMetric``.
            Metric names carry no prefix by default.
    """

    # '' (not None): no prefix on the names and no "prefix is not set" warning
    default_prefix: str | None = ''

    def __init__(self,
                 fp_levels: Sequence[float] = FP_LEVELS,
                 iou_thr: float | None = None,
                 criterion: str = 'iou',
                 breakdowns: Sequence[str] = (),
                 dump_file: str | None = None,
                 collect_device: str = 'cpu',
                 prefix: str | None = None,
                 collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        self.iou_thr = resolve_thr(criterion, iou_thr)
        self.criterion = criterion
        self.fp_levels = check_fp_levels(fp_levels)
        if isinstance(breakdowns, str):
            breakdowns = (breakdowns,)
        unknown = [b for b in breakdowns if b not in BREAKDOWNS]
        if unknown:
            raise ValueError(f'unknown breakdowns {unknown}; choose from '
                             f'{BREAKDOWNS}')
        self.breakdowns = tuple(breakdowns)
        self.dump_file = dump_file

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store one image record per data sample (numpy, on the CPU)."""
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            pred = sample.get('pred_instances')
            if pred is None:
                raise KeyError('DeepLesionFROCMetric: data sample has no '
                               '"pred_instances" (run the model in predict '
                               'mode)')
            if isinstance(pred, BaseDataElement):
                pred = pred.to_dict()
            if 'ori_gt_bboxes' not in sample:
                raise KeyError('DeepLesionFROCMetric: data sample '
                               f'{sample.get("file_name", "")!r} has no meta '
                               '"ori_gt_bboxes" (set by PackLesionInputs)')
            self.results.append(image_record(
                file_name=sample.get('file_name') or '',
                pred_bboxes=_numpy(pred['bboxes']),
                pred_scores=_numpy(pred['scores']),
                gt_bboxes=_numpy(sample['ori_gt_bboxes']),
                slice_interval=sample.get('slice_interval'),
                gt_diameters_mm=_numpy(sample.get('gt_diameters_mm')),
                gt_lesion_types=_numpy(sample.get('gt_lesion_types'))))

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Sensitivities of all gathered images (runs on rank 0 only)."""
        if self.dump_file:
            save_froc_dump(self.dump_file, results)
            print_log(f'FROC dump written to {self.dump_file}',
                      logger='current')
        report = evaluate_froc(results, self.fp_levels, self.iou_thr,
                               self.criterion, self.breakdowns)
        print_log(f'DeepLesion FROC ({self.criterion} >= {self.iou_thr:g}), '
                  'sensitivity (%) at FPs per image:\n' + report.table(),
                  logger='current')
        return report.metrics()
