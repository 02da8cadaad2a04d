"""A tiny synthetic DeepLesion-format tree shared by the config tests."""
import pytest

from a3d_det.datasets.synthetic import make_synthetic_deeplesion


@pytest.fixture(scope='session')
def tiny_synthetic_root(tmp_path_factory):
    """6 series at 64 px (every split may be small: use split=None)."""
    root = str(tmp_path_factory.mktemp('synthetic_configs'))
    make_synthetic_deeplesion(root, num_series=6, size=64, seed=5)
    return root
