"""Loading the project's own mmengine checkpoints with ``weights_only=True``.

Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``. mmengine
0.10.7 calls ``torch.load`` without the argument, and the checkpoints its
``CheckpointHook`` writes hold more than tensors: the message hub stores
``mmengine.logging.HistoryBuffer`` objects (numpy arrays inside, and the
buffer's statistics methods pickled as ``getattr(HistoryBuffer, 'min')``) and
numpy scalars (the ETA). Out of the box ``--resume`` therefore fails with
``Unsupported global: GLOBAL mmengine.logging.history_buffer.HistoryBuffer``,
and so does ``tools/test.py`` on a checkpoint the trainer wrote.

Rather than switching to ``weights_only=False`` (arbitrary code execution
from a crafted file), :func:`register_checkpoint_safe_globals` allowlists
exactly the data classes these checkpoints contain, so every load -- resume,
``load_from`` with weights from elsewhere, ``tools/test.py`` -- stays
``weights_only=True``:

* ``HistoryBuffer`` (a plain data container: two numpy arrays, an int and
  the names of its statistics methods);
* numpy arrays, dtypes and scalars (``_reconstruct``, ``ndarray``, ``dtype``,
  ``scalar`` and the concrete dtype classes), under both the numpy 1.x
  (``numpy.core``) and 2.x (``numpy._core``) module paths;
* ``builtins.getattr`` replaced by :func:`history_buffer_getattr`, which
  only looks up the statistics methods registered on ``HistoryBuffer``
  (``min``, ``max``, ``current``, ``mean`` and any added with
  ``HistoryBuffer.register_statistics``) and refuses everything else, so a
  crafted checkpoint cannot use it to reach other objects.

Importing :mod:`a3d_det.engine` registers them (the tools do); calling the
function again is harmless.
"""
from __future__ import annotations

import pickle
from typing import Any
from collections.abc import Callable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.utils import digit_version

__all__ = ['history_buffer_getattr', 'register_checkpoint_safe_globals',
           'checkpoint_safe_globals']

# Registered by every HistoryBuffer (``_set_default_statistics``); the class
# dict is only filled once a buffer exists, so a fresh process lists them here.
_DEFAULT_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def history_buffer_getattr(obj: Any, name: str) -> Callable:
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods.

    ``HistoryBuffer.__getstate__`` stores its ``_statistics_methods`` dict,
    whose values (functions defined on the class) pickle as
    ``getattr(HistoryBuffer, 'min')``. This stands in for ``builtins.getattr``
    during ``weights_only`` unpickling.

    Args:
        obj: must be the ``HistoryBuffer`` class.
        name: a registered statistics method name.

    Returns:
        The method, exactly what ``getattr(HistoryBuffer, name)`` gives.

    Raises:
        pickle.UnpicklingError: for any other object or attribute.
    """
    if obj is HistoryBuffer and isinstance(name, str):
        allowed = _DEFAULT_STATISTICS | set(HistoryBuffer._statistics_methods)
        method = getattr(HistoryBuffer, name, None) if name in allowed else None
        if callable(method):
            return method
    raise pickle.UnpicklingError(
        f'weights_only checkpoint loading refuses getattr({obj!r}, {name!r}): '
        'only HistoryBuffer statistics methods are allowed')


def _numpy_globals() -> list[tuple[Any, str]]:
    """The numpy objects an mmengine message hub pickles, under every path."""
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    items: list[tuple[Any, str]] = []
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        items.append((multiarray._reconstruct, f'{module}._reconstruct'))
        items.append((multiarray.scalar, f'{module}.scalar'))
    items.append((np.ndarray, 'numpy.ndarray'))
    items.append((np.dtype, 'numpy.dtype'))
    # Unpickled dtypes are instances of concrete classes (numpy >= 1.25:
    # numpy.dtypes.Float64DType, ...); BUILD on them needs the class
    # allowlisted. They are never named in the file, only their type is
    # checked, so the path string is informational.
    dtypes_module = getattr(np, 'dtypes', None)
    if dtypes_module is not None:
        for attr in dir(dtypes_module):
            cls = getattr(dtypes_module, attr)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                items.append((cls, f'numpy.dtypes.{attr}'))
    return items


def checkpoint_safe_globals() -> list[tuple[Any, str]]:
    """The ``(object, 'module.name')`` pairs the project's checkpoints need.

    Returns:
        Entries for ``torch.serialization.add_safe_globals``.
    """
    return [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (history_buffer_getattr, 'builtins.getattr'),
        *_numpy_globals(),
    ]


def register_checkpoint_safe_globals() -> bool:
    """Allowlist :func:`checkpoint_safe_globals` for ``weights_only`` loads.

    Idempotent: torch keeps the allowlist as a set. Only on torch >= 2.6,
    where ``weights_only=True`` became the default and allowlist entries may
    carry their pickled name; older torch loads these checkpoints with its
    ``weights_only=False`` default as mmengine expects.

    Returns:
        Whether anything was registered.
    """
    if digit_version(torch.__version__) < digit_version('2.6.0'):
        return False
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    return True
