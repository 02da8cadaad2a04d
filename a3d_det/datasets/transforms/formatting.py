"""``PackLesionInputs``: the network input tensor and its ``LesionDataSample``."""
from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import InstanceData

from a3d_det.registry import TRANSFORMS
from a3d_det.structures.lesion_data_sample import LesionDataSample


@TRANSFORMS.register_module()
class PackLesionInputs:
    """Pack ``img`` (H, W, D) into ``inputs`` float32 (1, D, H, W) and a
    :class:`LesionDataSample` with ``gt_instances`` (``bboxes`` (M, 4)
    float32, ``labels`` (M,) int64, ``masks`` (M, H, W) bool when loaded)
    and the meta listed in its docstring, plus ``img_path`` and ``image_dir``.
    """

    def __call__(self, results: dict) -> dict:
        img = np.asarray(results['img'], dtype=np.float32)
        if img.ndim == 2:
            img = img[:, :, None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        h, w = img.shape[:2]
        gt = InstanceData()
        boxes = np.asarray(results.get('gt_bboxes', np.zeros((0, 4))), np.float32).reshape(-1, 4)
        gt.bboxes = torch.from_numpy(boxes.copy())
        labels = results.get('gt_labels', np.zeros(len(boxes), np.int64))
        gt.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        masks = results.get('gt_masks')
        if masks is not None and isinstance(masks, np.ndarray):
            if masks.shape[1:] != (h, w):
                raise ValueError(f'{results.get("file_name")}: masks {masks.shape[1:]} do '
                                 f'not match the image {(h, w)}')
            gt.masks = torch.from_numpy(masks.astype(bool))
        ori_boxes = results.get('ori_gt_bboxes', boxes)
        m0 = len(ori_boxes)
        meta = dict(
            file_name=results.get('file_name'),
            img_path=results.get('img_path'),
            image_dir=results.get('image_dir'),
            ori_shape=tuple(results.get('ori_shape', (h, w))),
            img_shape=tuple(results.get('img_shape', (h, w))),
            pad_shape=tuple(results.get('pad_shape', (h, w))),
            scale_factor=tuple(results.get('scale_factor', (1.0, 1.0))),
            flip=bool(results.get('flip', False)),
            spacing=float(results.get('spacing', float('nan'))),
            slice_interval=float(results.get('slice_interval', float('nan'))),
            thickness=float(results.get('thickness', results.get('slice_interval', float('nan')))),
            ori_gt_bboxes=np.asarray(ori_boxes, np.float32).reshape(-1, 4),
            gt_lesion_types=np.asarray(results.get('gt_lesion_types', np.full(m0, -1)),
                                       np.int64).reshape(-1),
            gt_diameters_mm=np.asarray(results.get('gt_diameters_mm', np.full(m0, np.nan)),
                                       np.float32).reshape(-1),
        )
        sample = LesionDataSample(metainfo=meta)
        sample.gt_instances = gt
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
