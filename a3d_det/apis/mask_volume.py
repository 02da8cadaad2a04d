"""Lesion masks as a label volume (NIfTI) on the input's grid.

``tools/infer.py`` keeps each reported detection's mask as a small crop
(:func:`crop_mask`), paints the lesions into a label volume
(:func:`lesion_label_volume`: 0 background, the lesion id elsewhere) and
writes it (:func:`write_label_volume`): for NIfTI input on the file's own
grid and affine, for DICOM in the series' geometry (the affine from the
slice positions and orientation).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ['MaskCrop', 'crop_mask', 'lesion_label_volume', 'label_image',
           'write_label_volume']

#: (row offset, column offset, (h, w) bool crop) of one detection's mask.
MaskCrop = tuple[int, int, np.ndarray]


def crop_mask(mask: np.ndarray) -> MaskCrop | None:
    """The bounding crop of a (H, W) mask, or ``None`` when it is empty."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not rows.size:
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return int(y0), int(x0), mask[y0:y1, x0:x1].copy()


def paste_mask(crop: MaskCrop, shape: tuple[int, int]) -> np.ndarray:
    """A :func:`crop_mask` result back to a full (H, W) bool mask."""
    out = np.zeros(shape, dtype=bool)
    y0, x0, m = crop
    out[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
    return out


def lesion_label_volume(shape: tuple[int, int, int], lesions: Sequence[dict],
                        members: Sequence[Sequence[tuple[int, int]]],
                        masks: Mapping[tuple[int, int], MaskCrop | None]) -> np.ndarray:
    """Paint the lesions' masks into an (N, H, W) label volume.

    Args:
        shape: (N, H, W) of the series volume.
        lesions: from :func:`~a3d_det.apis.assign_lesions` (their ``id``).
        members: their (slice index, detection position) pairs.
        masks: the mask crop of each (slice index, detection position).

    Returns:
        (N, H, W) uint16: 0 background, else the lesion id; where lesions
        overlap on a slice the better-scoring one (smaller id) wins.
    """
    label = np.zeros(shape, dtype=np.uint16)
    # Paint worst first so the best-scoring lesion ends on top.
    for lesion, group in sorted(zip(lesions, members), key=lambda t: -t[0]['id']):
        for index, j in group:
            crop = masks.get((index, j))
            if crop is None:
                continue
            y0, x0, m = crop
            view = label[index, y0:y0 + m.shape[0], x0:x0 + m.shape[1]]
            view[m] = lesion['id']
    return label


def label_image(series, label: np.ndarray):
    """A ``nibabel.Nifti1Image`` of an (N, H, W) label volume of ``series``.

    For NIfTI input the volume goes back to the file's voxel order, shape
    and affine; otherwise it is stored as (column, row, slice) with
    ``series.affine`` (DICOM geometry; PNG: the pixel spacing and slice
    interval, axial slices assumed).
    """
    import nibabel as nib
    from nibabel.orientations import apply_orientation

    if label.shape != series.volume.shape:
        raise ValueError(f'label volume {label.shape} does not match the series '
                         f'{series.volume.shape}')
    data = label.transpose(2, 1, 0)        # (column, row, slice)
    if series.input_ornt is not None:
        data = apply_orientation(data, series.input_ornt).reshape(series.input_shape)
        affine = np.asarray(series.input_affine, dtype=np.float64)
    elif series.affine is not None:
        affine = np.asarray(series.affine, dtype=np.float64)
    else:
        sp = series.spacing or 1.0
        affine = np.diag([-sp, -sp, series.slice_interval, 1.0])
    data = np.ascontiguousarray(data, dtype=np.uint8 if label.max(initial=0) < 256
                                else np.uint16)
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_intent('label', name='lesion id')
    return img


def write_label_volume(series, label: np.ndarray, path: str) -> str:
    """Write :func:`label_image` to ``path`` (``.nii`` or ``.nii.gz``)."""
    import nibabel as nib
    nib.save(label_image(series, label), path)
    return path
