"""Label volumes on the input's grid and the per-lesion pictures."""
from __future__ import annotations

import os.path as osp

import cv2
import nibabel as nib
import numpy as np
import pytest

from a3d_det.apis import crop_mask, label_image, lesion_label_volume, write_lesion_pictures
from a3d_det.apis.lesion_pictures import KEY_COLOR, SEPARATOR, TILE
from a3d_det.datasets import read_ct_series
from tests.helpers import ct_files


def test_crop_mask_round_trip():
    m = np.zeros((10, 12), bool)
    m[2:5, 7:9] = True
    m[6, 3] = True
    y0, x0, crop = crop_mask(m)
    assert (y0, x0, crop.shape) == (2, 3, (5, 6))
    assert crop.sum() == m.sum()
    assert crop_mask(np.zeros((4, 4), bool)) is None


def test_label_volume_paints_ids_best_on_top():
    lesions = [dict(id=1), dict(id=2)]
    members = [[(0, 0), (1, 0)], [(1, 1)]]
    a = np.zeros((6, 6), bool)
    a[1:4, 1:4] = True
    b = np.zeros((6, 6), bool)
    b[2:6, 2:6] = True
    masks = {(0, 0): crop_mask(a), (1, 0): crop_mask(a), (1, 1): crop_mask(b)}
    label = lesion_label_volume((3, 6, 6), lesions, members, masks)
    np.testing.assert_array_equal(label[0], a * 1)
    expected = np.where(a, 1, np.where(b, 2, 0))
    np.testing.assert_array_equal(label[1], expected)
    assert not label[2].any()


def _world_of_display_voxel(series, k, row, col):
    """Patient position (RAS) of pixel (row, col) of slice k, from the DICOM
    headers of CT5N (independent of the series' affine)."""
    _, _, lps = ct_files.ct5n_dicom()
    return (np.diag([-1, -1, 1, 1]) @ lps @ [col, row, k, 1])[:3]


@pytest.mark.parametrize('source', ['dicom', 'dcm2niix_rows_flipped', 'ras_plus',
                                    'slices_reversed_axes_permuted'])
def test_label_image_is_on_the_input_grid(source, tmp_path):
    if source == 'dicom':
        series = read_ct_series(ct_files.CT5N)
    else:
        cases, _ = ct_files.variants()
        data, affine = cases[source]
        series = read_ct_series(ct_files.save_nifti(data, affine, str(tmp_path / 'x.nii.gz'),
                                                    -1024.0))
    label = np.zeros(series.volume.shape, np.uint16)
    k, row, col = 3, 5, 11
    label[k, row, col] = 7
    img = label_image(series, label)
    path = str(tmp_path / 'label.nii.gz')
    nib.save(img, path)
    img = nib.load(path)
    data = np.asarray(img.dataobj)
    if source != 'dicom':
        assert data.shape == series.input_shape
        np.testing.assert_allclose(img.affine, series.input_affine, atol=1e-5)
    (voxel,) = np.argwhere(data == 7)
    world = (img.affine @ np.r_[voxel, 1])[:3]
    np.testing.assert_allclose(world, _world_of_display_voxel(series, k, row, col), atol=1e-3)
    assert data.sum() == 7


def test_lesion_strip_marks_the_key_slice(tmp_path):
    series = read_ct_series(ct_files.CT5N)
    m = np.zeros((16, 16), bool)
    m[4:9, 5:11] = True
    slices = [dict(index=i, z_mm=float(series.z_mm[i]),
                   detections=[dict(box=[5, 4, 11, 9], score=s)])
              for i, s in ((1, 0.4), (2, 0.9), (3, 0.5))]
    lesions = [dict(id=4, key_index=2, slices=[1, 2, 3])]
    members = [[(1, 0), (2, 0), (3, 0)]]
    masks = {(i, 0): crop_mask(m) for i in (1, 2, 3)}
    (path,) = write_lesion_pictures(series, lesions, members, slices, masks, str(tmp_path))
    assert osp.basename(path) == 'lesion_004.png'
    img = cv2.imread(path)
    assert img.shape == (TILE, 3 * TILE + 2 * SEPARATOR, 3)
    key = img[:, TILE + SEPARATOR:2 * TILE + SEPARATOR]
    other = img[:, :TILE]
    is_key = np.all(key == KEY_COLOR, axis=-1)
    assert is_key[1:3, :].mean() > 0.9 and is_key[:, 1:3].mean() > 0.9
    assert not np.all(other == KEY_COLOR, axis=-1)[1:3, :].any()
    # the mask outline (green) is drawn on every tile
    for t in range(3):
        tile = img[:, t * (TILE + SEPARATOR):t * (TILE + SEPARATOR) + TILE]
        assert np.all(tile == (0, 220, 0), axis=-1).sum() > 20
