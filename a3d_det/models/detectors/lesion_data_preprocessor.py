"""Batching of multi-slice CT inputs: pads H and W, never the slice axis."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from a3d_det.registry import MODELS


@MODELS.register_module()
class LesionDataPreprocessor(BaseDataPreprocessor):
    """Stack ``(1, D, H, W)`` inputs into ``(B, 1, D, H, W)``, padding H and W.

    mmengine's ``ImgDataPreprocessor`` pads every dimension but channels, so
    two 7-slice volumes with ``pad_size_divisor=32`` came out with 32 slices;
    here only the last two dimensions are padded (bottom and right), to the
    largest H and W in the batch rounded up to ``pad_size_divisor``. Every
    input must have the same number of slices D.

    Each data sample gets ``batch_input_shape`` = (H_pad, W_pad) in its meta.

    Args:
        pad_size_divisor: H_pad and W_pad are multiples of it.
        pad_value: value of the padded pixels, on the windowed intensity
            scale of the pipeline.
        non_blocking: passed to ``Tensor.to`` when moving inputs and data
            samples to the device. With the dataloader's ``pin_memory=True``
            the host-to-GPU copies then overlap with the host (the copies and
            the model run in order on the same CUDA stream, so results do not
            change); from pageable memory the copy is synchronous either way.
    """

    def __init__(self, pad_size_divisor: int = 32, pad_value: float = 0.0,
                 non_blocking: bool = True) -> None:
        super().__init__(non_blocking=non_blocking)
        if pad_size_divisor < 1:
            raise ValueError(f'pad_size_divisor must be >= 1, got {pad_size_divisor}')
        self.pad_size_divisor = pad_size_divisor
        self.pad_value = pad_value

    def forward(self, data: dict, training: bool = False) -> dict:
        """
        Args:
            data: ``inputs`` (list of (1, D, H_i, W_i) tensors, or a
                (B, 1, D, H, W) tensor) and optionally ``data_samples``.
            training: unused (no training-only steps).

        Returns:
            ``inputs`` float32 (B, 1, D, H_pad, W_pad) on the model's device and
            ``data_samples`` (moved as well).
        """
        data = self.cast_data(data)
        inputs = self._as_list(data['inputs'])
        data_samples: Sequence | None = data.get('data_samples')
        channels_depth = {tuple(x.shape[:2]) for x in inputs}
        if len(channels_depth) != 1:
            raise ValueError('LesionDataPreprocessor: all inputs of a batch need '
                             'the same (channels, slices); got '
                             f'{sorted(channels_depth)}')
        div = self.pad_size_divisor
        pad_h = math.ceil(max(x.shape[-2] for x in inputs) / div) * div
        pad_w = math.ceil(max(x.shape[-1] for x in inputs) / div) * div
        batch = inputs[0].new_full((len(inputs), *inputs[0].shape[:2], pad_h, pad_w),
                                   self.pad_value, dtype=torch.float32)
        for i, x in enumerate(inputs):
            batch[i, :, :, :x.shape[-2], :x.shape[-1]] = x
        if data_samples is not None:
            for sample in data_samples:
                sample.set_metainfo(dict(batch_input_shape=(pad_h, pad_w)))
        return dict(inputs=batch, data_samples=data_samples)

    @staticmethod
    def _as_list(inputs: Tensor | list[Tensor]) -> list[Tensor]:
        """Check shapes: a (B, 1, D, H, W) tensor or a list of (1, D, H, W) tensors."""
        if isinstance(inputs, Tensor):
            if inputs.dim() != 5:
                raise ValueError('LesionDataPreprocessor: expected a (B, 1, D, H, W) '
                                 f'batch, got shape {tuple(inputs.shape)}')
            return list(inputs)
        if len(inputs) == 0:
            raise ValueError('LesionDataPreprocessor: empty batch')
        for x in inputs:
            if x.dim() != 4:
                raise ValueError('LesionDataPreprocessor: expected (1, D, H, W) '
                                 f'inputs, got shape {tuple(x.shape)}')
        return list(inputs)
