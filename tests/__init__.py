"""The test suite (mirrors ``a3d_det/``); shared helpers are in ``tests.helpers``."""
