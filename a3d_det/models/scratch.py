"""Reused work buffers for feature maps that live for one call.

On CPU every new tensor above glibc's mmap threshold (at most 32 MiB) is fresh
memory whose pages fault on first write, which for a feature map can take
longer than the arithmetic that fills it. A map that is used only within one
call (A3D's fused map, a dense layer's normalised input at inference) is
written into a buffer that stays: the same memory on every call.
"""
from __future__ import annotations

import threading

import torch
from torch import Tensor

_buffers = threading.local()


def scratch(slot: str, numel: int, like: Tensor) -> Tensor:
    """A flat buffer of ``numel`` elements of ``like``'s dtype and device,
    the same memory on every call with this ``slot`` in this thread (grown
    when too small; the contents are not kept). Each slot holds the largest
    request so far; different slots never overlap."""
    store = getattr(_buffers, 'store', None)
    if store is None:
        store = _buffers.store = {}
    key = (slot, like.dtype, like.device)
    buffer = store.get(key)
    if buffer is None or buffer.numel() < numel:
        store.pop(key, None)                # free the old one first
        buffer = store[key] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buffer[:numel]


def release() -> None:
    """Free this thread's buffers (they are made again when next needed)."""
    _buffers.store = {}
