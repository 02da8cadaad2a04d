"""Counting the operations that make the host wait for the GPU, on any device.

On CUDA the host queues kernels and runs ahead; it has to wait for the GPU
(a host-device synchronisation) whenever it needs a value computed there:
``Tensor.item()``/``bool()``/``int()``, and every operation whose output
size depends on the data -- ``nonzero`` and its users (``torch.where(cond)``,
boolean-mask indexing and assignment, ``masked_select``), ``unique``,
``repeat_interleave`` without an output size, ``bincount``, NMS.

:class:`HostSyncCounter` records those operations at PyTorch's dispatcher as
they run, so a CPU run counts exactly the operations that would synchronise
on CUDA, with the Python line that issued each. Device-to-host copies
(``.cpu()``, ``.tolist()`` of a CUDA tensor) and blocking host-to-device
copies also wait, but are no-ops on a CPU run; they are not counted.
"""
from __future__ import annotations

import collections
import os.path as osp
import traceback
from typing import Any
from collections.abc import Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ['HostSyncCounter', 'SYNC_OPS']

#: Operators that synchronise on CUDA (their output needs a device value).
SYNC_OPS = frozenset({
    'aten::_local_scalar_dense',  # item(), bool(), int(), float()
    'aten::is_nonzero', 'aten::equal', 'aten::allclose',
    'aten::nonzero', 'aten::masked_select', 'aten::_unique2', 'aten::unique_dim',
    'aten::unique_consecutive', 'aten::repeat_interleave', 'aten::bincount',
    'torchvision::nms',
})
# Indexing with a boolean mask calls nonzero inside the kernel.
_BOOL_INDEX_OPS = frozenset({'aten::index', 'aten::index_put', 'aten::index_put_',
                             'aten::_index_put_impl_'})


def _has_bool_index(args: Sequence[Any]) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
               for i in indices or ())


class HostSyncCounter(TorchDispatchMode):
    """Context manager counting synchronising operators by call site.

    Args:
        sources: substrings of the file paths reported as call sites (the
            innermost frames whose path contains one are kept).
        depth: how many such frames name a call site.

    Attributes:
        counts: ``{(operator, call site): count}``; boolean-mask indexing is
            reported as ``'aten::index[bool]'`` (or ``index_put``).
    """

    def __init__(self, sources: Sequence[str] = ('a3d_det', 'torchvision'),
                 depth: int = 2) -> None:
        super().__init__()
        self.sources = tuple(sources)
        self.depth = depth
        self.counts: collections.Counter = collections.Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_operator(self) -> dict[str, int]:
        """``{operator: count}``."""
        totals: collections.Counter = collections.Counter()
        for (name, _), count in self.counts.items():
            totals[name] += count
        return dict(totals)

    def _site(self) -> str:
        frames = [f for f in traceback.extract_stack()[:-3]
                  if any(s in f.filename for s in self.sources)]
        return ' < '.join(f'{osp.basename(f.filename)}:{f.lineno}'
                          for f in reversed(frames[-self.depth:]))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in _BOOL_INDEX_OPS and _has_bool_index(args):
            self.counts[(f'{name}[bool]', self._site())] += 1
        elif name in SYNC_OPS:
            self.counts[(name, self._site())] += 1
        return func(*args, **(kwargs or {}))
