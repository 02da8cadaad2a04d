"""Models: fusion operators, backbones, necks, heads, losses, detectors.

Importing this package registers every model module in ``a3d_det.registry.MODELS``.
"""
from __future__ import annotations

from a3d_det.models import fusion  # noqa: F401
from a3d_det.models import backbones  # noqa: F401
from a3d_det.models import necks  # noqa: F401
from a3d_det.models import heads  # noqa: F401
from a3d_det.models import losses  # noqa: F401
from a3d_det.models import detectors  # noqa: F401
