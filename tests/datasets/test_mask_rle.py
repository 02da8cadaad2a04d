import numpy as np
import pytest

from a3d_det.datasets.mask_rle import decode_mask, encode_rle


@pytest.mark.parametrize('compress', [False, True])
def test_rle_round_trip(compress):
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (64, 48), (1, 1)]:
        for mask in (rng.random(shape) > 0.6, np.ones(shape, bool), np.zeros(shape, bool)):
            rle = encode_rle(mask, compress=compress)
            assert rle['size'] == list(shape)
            np.testing.assert_array_equal(decode_mask(rle, shape), mask)


def test_rle_is_column_major_coco_layout():
    mask = np.array([[0, 1], [0, 1], [1, 1]], bool)  # columns: 0,0,1 | 1,1,1
    assert encode_rle(mask) == {'size': [3, 2], 'counts': [2, 4]}
    assert encode_rle(np.ones((2, 2), bool))['counts'] == [0, 4]
    # COCO's compressed string: counts [0, 3, 1, 1, 1, 1, 1]; from the 4th
    # count on, the delta to counts[i-2] is written (1 - 3 = -2 -> 'N': 30 + 48).
    two_rows = np.array([[1, 1, 1, 1], [1, 0, 0, 0]], bool)
    assert encode_rle(two_rows)['counts'] == [0, 3, 1, 1, 1, 1, 1]
    assert encode_rle(two_rows, compress=True)['counts'] == '031N000'
    np.testing.assert_array_equal(decode_mask({'size': [2, 4], 'counts': '031N000'}), two_rows)
    np.testing.assert_array_equal(
        decode_mask({'size': [2, 4], 'counts': '053'}),
        np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool))


def test_polygon_decoding():
    mask = decode_mask([[1, 1, 5, 1, 5, 4, 1, 4]], (6, 8))
    assert mask[2, 3] and not mask[5, 7] and mask.sum() == 20


@pytest.mark.parametrize('obj, shape, match', [
    ({'size': [2, 2], 'counts': [1, 2]}, None, 'sum to 3'),
    ({'size': [2, 2], 'counts': [0, 4]}, (3, 3), 'does not match'),
    ({'counts': [4]}, None, 'size and counts'),
    ([[1, 1, 2, 2]], (4, 4), '>= 3 points'),
    ([[1, 1, 2, 2, 3, 1]], None, 'needs the image shape'),
    (7, None, 'unsupported'),
])
def test_bad_masks(obj, shape, match):
    with pytest.raises(ValueError, match=match):
        decode_mask(obj, shape)
