"""Mixed precision on CPU: bfloat16 autocast for ``tools/train.py --amp``.

mmengine's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU device. On a CPU-only
machine ``--amp`` selects :class:`CPUAmpOptimWrapper` instead: the forward
pass (and so the loss) runs under ``torch.autocast('cpu', torch.bfloat16)``.
bfloat16 has float32's exponent range, so no loss scaling is needed (float16
without a scaler would underflow small gradients, so it is not offered); the
parameters and the optimiser state stay float32.
"""
from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from a3d_det.registry import OPTIM_WRAPPERS

__all__ = ['CPUAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` enables bfloat16 CPU autocast.

    Args:
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    cast_dtype: torch.dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient accumulation context plus ``torch.autocast('cpu')``."""
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
