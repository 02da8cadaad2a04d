"""mask_long_axis_mm: the RECIST long axis of a predicted mask."""
import cv2
import numpy as np
import pytest

from a3d_det.apis import mask_long_axis_mm


def test_disc_diameter():
    m = np.zeros((101, 101), np.uint8)
    cv2.circle(m, (50, 50), 20, 1, -1)
    assert mask_long_axis_mm(m.astype(bool), 0.5) == pytest.approx(41 * 0.5, abs=0.01)


def test_horizontal_line_with_anisotropic_pixels():
    m = np.zeros((20, 20), bool)
    m[3, 3:13] = True  # 10 pixels along x
    # (row, column) spacing: x distances use the column spacing
    assert mask_long_axis_mm(m, (1.0, 0.5)) == pytest.approx(5.0)
    assert mask_long_axis_mm(m.T, (1.0, 0.5)) == pytest.approx(10.0)


def test_rectangle_diagonal():
    m = np.zeros((50, 50), bool)
    m[10:20, 5:35] = True  # 30 x 10 px
    got = mask_long_axis_mm(m, 1.0)
    assert np.hypot(29, 9) < got <= np.hypot(30, 10) + 1e-6


def test_empty_mask_and_unknown_spacing():
    empty = np.zeros((5, 5), bool)
    assert mask_long_axis_mm(empty, 1.0, box=[0, 0, 3, 4]) == pytest.approx(5.0)
    assert mask_long_axis_mm(empty, 1.0) is None
    assert mask_long_axis_mm(np.ones((5, 5), bool), None) is None
