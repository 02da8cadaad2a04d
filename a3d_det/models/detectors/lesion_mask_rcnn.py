"""The universal lesion detector of the A3D paper (Sec. 2.3, Fig. 2): Mask R-CNN on a 3D backbone."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseModel
from torch import Tensor
from torchvision.models.detection.image_list import ImageList

from a3d_det.models.fusion.align_shift import check_thickness
from a3d_det.registry import MODELS
from a3d_det.structures.lesion_data_sample import LesionDataSample


@MODELS.register_module()
class LesionMaskRCNN(BaseModel):
    """3D backbone -> 3D-to-2D FPN -> RPN -> RoI box and mask heads, on the key slice.

    The detector only composes its parts; each arrives as a config dict.
    Channels and strides flow from the backbone to the neck and from the neck
    to the heads, so configs never repeat them.

    Args:
        backbone: e.g. ``dict(type='DenseNet3D', num_slices=3, fusion=dict(type='A3D'))``;
            must expose ``out_channels``, ``strides`` and ``num_slices``.
        neck: e.g. ``dict(type='FPN3Dto2D', out_channels=512)``.
        rpn_head: ``LesionRPNHead`` config.
        roi_head: ``LesionRoIHead`` config.
        data_preprocessor: ``LesionDataPreprocessor`` config (the default
            pads to a multiple of 32).
        with_mask_in_val: predict masks in ``val_step`` and ``test_step``,
            the runner's validation and test loops. ``False`` (default): the
            loops get boxes, scores and labels only (the FROC metric reads
            nothing else), skipping the mask head and the pasting of up to
            50 masks per image; the tools set it when ``--show-dir`` or a
            metric with ``requires_masks = True`` needs masks.
            ``forward(mode='predict')`` always predicts masks, and
            ``a3d_det.apis.init_detector`` sets it for inference.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 rpn_head: dict,
                 roi_head: dict,
                 data_preprocessor: dict | None = None,
                 with_mask_in_val: bool = False,
                 init_cfg: dict | None = None) -> None:
        preprocessor = MODELS.build(
            dict(type='LesionDataPreprocessor') if data_preprocessor is None
            else data_preprocessor)
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(dict(neck, in_channels=self.backbone.out_channels,
                                      strides=self.backbone.strides,
                                      num_slices=self.backbone.num_slices))
        self.rpn_head = MODELS.build(dict(rpn_head, in_channels=self.neck.out_channels))
        self.roi_head = MODELS.build(dict(roi_head, in_channels=self.neck.out_channels,
                                          featmap_stride=self.neck.stride))
        self.with_mask_in_val = with_mask_in_val
        # Whether an operator of the backbone reads the slice thickness
        # (AlignShift): then it is checked once per batch, on the host.
        self.uses_thickness = any(getattr(m, 'takes_thickness', False)
                                  for m in self.backbone.modules())

    def val_step(self, data: dict | tuple | list) -> list[LesionDataSample]:
        """Validation loop: ``predict`` with masks only if ``with_mask_in_val``."""
        data = self.data_preprocessor(data, False)
        return self.predict(**data, with_mask=self.with_mask_in_val)

    def test_step(self, data: dict | tuple | list) -> list[LesionDataSample]:
        """Test loop (and inference): as :meth:`val_step`."""
        return self.val_step(data)

    def forward(self, inputs: Tensor,
                data_samples: list[LesionDataSample] | None = None,
                mode: str = 'tensor'
                ) -> dict[str, Tensor] | list[LesionDataSample] | tuple[Tensor, ...]:
        """
        Args:
            inputs: (B, 1, D, H, W) batch from the data preprocessor.
            data_samples: one ``LesionDataSample`` per input.
            mode: ``'loss'`` (dict of losses), ``'predict'`` (the samples with
                ``pred_instances``) or ``'tensor'`` (raw network outputs).
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"LesionMaskRCNN: mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def extract_feat(self, inputs: Tensor,
                     data_samples: Sequence[LesionDataSample] | None = None) -> Tensor:
        """(B, 1, D, H, W) -> (B, C, H/4, W/4) 2D map of the key slice."""
        if inputs.dim() != 5 or inputs.shape[2] != self.backbone.num_slices:
            raise ValueError(
                f'LesionMaskRCNN: inputs {tuple(inputs.shape)} do not have the '
                f'{self.backbone.num_slices} slices the model was built for; set '
                'model.backbone.num_slices and the datasets\' num_slices to the same D')
        # 1. 3D backbone: three maps (B, C_i, D, H/s_i, W/s_i); AlignShift
        #    operators read each sample's slice thickness.
        feats = self.backbone(inputs, _thickness(data_samples, inputs.device,
                                                 check=self.uses_thickness))
        # 2. Neck: D x 1 x 1 squeeze, lateral, top-down -> (B, C, H/4, W/4).
        return self.neck(feats)

    def loss(self, inputs: Tensor, data_samples: Sequence[LesionDataSample]) -> dict[str, Tensor]:
        """Training losses: ``loss_rpn_cls``, ``loss_rpn_bbox``, ``loss_cls``, ``loss_bbox``, ``loss_mask``."""
        gts = [s.gt_instances for s in data_samples]
        for s, gt in zip(data_samples, gts):
            if 'masks' not in gt:
                raise ValueError(f"LesionMaskRCNN: sample {s.metainfo.get('file_name', '?')} "
                                 'has no gt_instances.masks; load them with '
                                 'LoadLesionAnnotations(with_mask=True)')
        gt_bboxes = [gt.bboxes.to(inputs) for gt in gts]
        # 1-2. Backbone and neck: (B, 1, D, H, W) -> (B, C, H/4, W/4).
        feature = self.extract_feat(inputs, data_samples)
        # 3. RPN: anchors on the stride-4 map -> per image (P_i, 4) proposals.
        proposals, losses = self.rpn_head(_image_list(inputs, data_samples), feature, gt_bboxes)
        # 4. RoI head: sampled RoIs -> box and mask losses.
        losses.update(self.roi_head.loss(feature, proposals, gt_bboxes,
                                         [gt.labels for gt in gts],
                                         [_as_tensor(gt.masks, inputs.device) for gt in gts]))
        return losses

    def predict(self, inputs: Tensor,
                data_samples: Sequence[LesionDataSample],
                with_mask: bool = True) -> list[LesionDataSample]:
        """Detections on the key slices, in original image pixels.

        Args:
            with_mask: also predict masks (boxes and scores do not depend on it).

        Returns:
            the samples with ``pred_instances``: ``bboxes`` (N, 4), ``scores``
            (N,), ``labels`` (N,) int64 zeros and, with ``with_mask``,
            ``masks`` (N, H0, W0) bool.
        """
        # 1-2. Backbone and neck: (B, 1, D, H, W) -> (B, C, H/4, W/4).
        feature = self.extract_feat(inputs, data_samples)
        # 3. RPN: per image (<= 300, 4) proposals after NMS 0.7.
        proposals, _ = self.rpn_head(_image_list(inputs, data_samples), feature)
        # 4. RoI head: boxes, scores, masks, rescaled to the original image.
        results = self.roi_head.predict(feature, proposals, [s.metainfo for s in data_samples],
                                        with_mask=with_mask)
        for sample, result in zip(data_samples, results):
            sample.pred_instances = result
        return list(data_samples)

    def _forward(self, inputs: Tensor,
                 data_samples: Sequence[LesionDataSample] | None = None
                 ) -> tuple[Tensor, ...]:
        """Raw outputs, no post-processing.

        Returns:
            feature (B, C, H/4, W/4), RPN objectness (B, A, H/4, W/4), RPN
            deltas (B, 4A, H/4, W/4), box scores (sum P_i, K+1) and box deltas
            (sum P_i, 4K) on the RPN proposals.
        """
        feature = self.extract_feat(inputs, data_samples)
        objectness, deltas = self.rpn_head.head_outputs(feature)
        proposals, _ = self.rpn_head(_image_list(inputs, data_samples), feature)
        cls_score, bbox_pred = self.roi_head(feature, proposals)
        return feature, objectness, deltas, cls_score, bbox_pred


def _image_list(inputs: Tensor,
                data_samples: Sequence[LesionDataSample] | None) -> ImageList:
    """torchvision ``ImageList``: the (B, 1, D, H, W) batch and each image's (h, w) before padding."""
    full = (int(inputs.shape[-2]), int(inputs.shape[-1]))
    if data_samples is None:
        sizes = [full] * inputs.shape[0]
    else:
        sizes = [tuple(int(v) for v in s.metainfo.get('img_shape', full)[:2])
                 for s in data_samples]
    return ImageList(inputs, sizes)


def _thickness(data_samples: Sequence[LesionDataSample] | None,
               device: torch.device, check: bool = False) -> Tensor | None:
    """(B,) float32 slice thickness in mm from the samples' meta, or None when absent.

    With ``check`` (a backbone operator reads it), the host values are
    validated here, once per batch, so that no operator has to synchronise
    with the device to do it.
    """
    if data_samples is None:
        return None
    values = [s.metainfo.get('thickness') for s in data_samples]
    if check:
        names = [s.metainfo.get('file_name', '?') for s in data_samples]
        check_thickness(values, f'the slice thickness of {names}')
    if any(v is None for v in values):
        return None
    # Built on the host, copied without blocking: torch.tensor(..., device=cuda)
    # would wait for the stream (a host-device synchronisation).
    return torch.tensor([float(v) for v in values], dtype=torch.float32).to(
        device, non_blocking=True)


def _as_tensor(masks, device: torch.device) -> Tensor:
    """Ground-truth masks (M, H, W) as a tensor on ``device`` (accepts numpy arrays)."""
    return torch.as_tensor(masks, device=device)
