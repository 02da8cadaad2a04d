"""The tasks of ``tools/analysis/benchmark.py --task NAME``.

A task is a module here named in :data:`TASKS`, with

* a docstring (its first line is the task's help, the rest its description),
* ``add_arguments(parser)``: its own options (and ``parser.set_defaults`` for
  the common ``--rounds``/``--warmup``),
* ``run(args) -> dict``: measure (with :mod:`a3d_det.utils.timing`), print the
  table, return the measurements as JSON-able data for ``--json-out``.

User mistakes raise :class:`~a3d_det.utils.errors.UserInputError`.
"""
from __future__ import annotations

import importlib
import os.path as osp
from types import ModuleType

from mmengine.config import Config

from a3d_det.utils.errors import require_file

__all__ = ['METHODS', 'TASKS', 'leaf_config', 'task_module']

#: Task names, in the order ``--help`` lists them.
TASKS: tuple[str, ...] = ('fusion', 'data', 'froc', 'train', 'infer')

#: Fusion operator -> its method folder under ``configs/``.
METHODS: dict[str, str] = {
    'NoFusionConv': 'no_fusion', 'I3DConv': 'i3d', 'P3DConv': 'p3d', 'ACSConv': 'acs',
    'TSMConv': 'tsm', 'AlignShiftConv': 'alignshift', 'A3DConv': 'a3d'}

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__))))), 'configs')


def task_module(name: str) -> ModuleType:
    """The module of task ``name`` (one of :data:`TASKS`)."""
    if name not in TASKS:
        raise ValueError(f'unknown task {name!r}; choose from {TASKS}')
    return importlib.import_module(f'{__name__}.{name}')


def leaf_config(fusion: str, num_slices: int) -> tuple[Config, str]:
    """The DeepLesion leaf config of operator ``fusion`` at ``num_slices``
    (``configs/{method}/{method}_densenet121_{D}slice_deeplesion.py``); built
    models hold random weights (the ImageNet file loads only in
    ``init_weights``), which time the same.

    Returns:
        (config, its path)
    """
    method = METHODS[fusion]
    path = require_file(osp.join(CONFIGS, method,
                                 f'{method}_densenet121_{num_slices}slice_deeplesion.py'),
                        f'config of {fusion} at {num_slices} slices')
    return Config.fromfile(path), path
