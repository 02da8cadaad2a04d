"""Test-time hook writing Fig. 3-style overlays (``tools/test.py --show-dir``)."""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Sequence

import cv2
from mmengine.hooks import Hook
from mmengine.logging import print_log

from a3d_det.datasets.deeplesion import SliceReadError, read_png_hu
from a3d_det.registry import HOOKS
from a3d_det.visualization.lesion_overlay import DISPLAY_WINDOW, draw_lesions, window_image

__all__ = ['LesionVisualizationHook']


@HOOKS.register_module()
class LesionVisualizationHook(Hook):
    """After each test iteration, draw every key slice with its predictions.

    The key slice is re-read from the data sample's ``img_path`` (a
    DeepLesion uint16 PNG, HU = value - 32768), windowed for display, and
    drawn with the predictions scoring at least ``score_thr`` (``bboxes`` and
    ``masks`` in original pixels) and the ground truth ``ori_gt_bboxes``:
    true positives, false positives and ground truth in distinct colours as
    in Fig. 3 of the paper. One PNG per key slice is written to ``show_dir``,
    named after the key slice's ``file_name`` (``PPPPPP_SS_RR_NNN.png``).

    Args:
        show_dir: output folder (created when missing).
        score_thr: lowest score drawn.
        iou_thr: IoU at which a prediction counts as a true positive.
        window: display window in HU.
        draw_masks: also fill the predicted masks.
    """

    priority = 'NORMAL'

    def __init__(self,
                 show_dir: str,
                 score_thr: float = 0.3,
                 iou_thr: float = 0.5,
                 window: tuple[float, float] = DISPLAY_WINDOW,
                 draw_masks: bool = True) -> None:
        self.show_dir = show_dir
        self.score_thr = float(score_thr)
        self.iou_thr = float(iou_thr)
        self.window = tuple(window)
        self.draw_masks = draw_masks
        self._warned = False

    def before_test(self, runner) -> None:
        os.makedirs(self.show_dir, exist_ok=True)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Sequence | None = None) -> None:
        """Draw ``outputs`` (the predicted ``LesionDataSample`` list)."""
        for sample in outputs or []:
            self.draw_sample(sample)

    def draw_sample(self, sample) -> str | None:
        """Draw one predicted data sample; return the written path (or None)."""
        img_path = sample.metainfo.get('img_path')
        try:
            if not img_path:
                raise SliceReadError('the data sample has no img_path')
            hu = read_png_hu(img_path)  # HU = value - 32768
        except SliceReadError as e:
            if not self._warned:
                print_log(f'LesionVisualizationHook: cannot read the key slice '
                          f'({e}); skipping overlays without one',
                          logger='current')
                self._warned = True
            return None
        pred = sample.pred_instances
        keep = (pred.scores >= self.score_thr).cpu().numpy()
        masks = None
        if self.draw_masks and 'masks' in pred and len(pred.masks) == len(keep):
            masks = pred.masks.cpu().numpy()[keep]
        canvas = draw_lesions(
            window_image(hu, self.window),
            pred.bboxes.cpu().numpy()[keep],
            pred.scores.cpu().numpy()[keep],
            gt_boxes=sample.metainfo.get('ori_gt_bboxes'),
            masks=masks,
            iou_thr=self.iou_thr)
        name = sample.metainfo.get('file_name') or osp.basename(img_path)
        out = osp.join(self.show_dir, name.replace('/', '_').replace('\\', '_'))
        if not out.lower().endswith('.png'):
            out += '.png'
        os.makedirs(self.show_dir, exist_ok=True)
        cv2.imwrite(out, canvas)
        return out
