"""Helpers of the command-line tools (``tools/``): user errors, config
preparation, JSON output, and the timing of the benchmarks.

Import the submodules (``a3d_det.utils.cli``, ``a3d_det.utils.runner_config``,
``a3d_det.utils.timing``); this package itself imports nothing, so the engine
can use :mod:`a3d_det.utils.errors` without pulling in the tools' glue.
"""
