"""Models: fusion operators, backbones, necks, heads, losses, detectors.

Importing this package registers every model module in ``a3d_det.registry.MODELS``.
"""
from . import fusion  # noqa: F401
from . import backbones  # noqa: F401
from . import necks  # noqa: F401
from . import heads  # noqa: F401
from . import losses  # noqa: F401
from . import detectors  # noqa: F401
