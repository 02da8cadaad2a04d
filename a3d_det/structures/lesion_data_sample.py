"""The data sample that travels from the pipeline through the detector to the metric."""
from __future__ import annotations

from mmengine.structures import BaseDataElement, InstanceData


class LesionDataSample(BaseDataElement):
    """One key slice: its meta, ground-truth lesions and predictions.

    Meta (``metainfo``), set by ``PackLesionInputs``:
        file_name (str): ``PPPPPP_SS_RR/NNN.png`` of the key slice.
        ori_shape (tuple[int, int]): (H, W) of the key slice on disk.
        img_shape (tuple[int, int]): (H, W) after resizing, before padding.
        pad_shape (tuple[int, int]): (H, W) after padding.
        scale_factor (tuple[float, float]): (w_scale, h_scale), img / ori.
        flip (bool): horizontally flipped.
        spacing (float): in-plane pixel spacing of the original image, mm/px.
        slice_interval (float): native slice interval of the series, mm.
        thickness (float): slice thickness passed to AlignShift, mm.
        ori_gt_bboxes (np.ndarray): (M, 4) float32 0-based x1y1x2y2 lesions
            in original pixels (what the FROC metric scores against).
        gt_lesion_types (np.ndarray): (M,) int64 coarse lesion type (-1 unknown).
        gt_diameters_mm (np.ndarray): (M,) float32 RECIST long axis in mm.

    Fields:
        gt_instances (InstanceData): ``bboxes`` (M, 4) float32 tensor in input
            pixels, ``labels`` (M,) int64 (0 = lesion), ``masks`` (M, H, W)
            bool tensor at the padded input size (optional).
        pred_instances (InstanceData): ``bboxes`` (N, 4) float32 in original
            pixels, ``scores`` (N,), ``labels`` (N,) int64, ``masks``
            (N, H0, W0) bool (optional).
    """

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances
