"""NIfTI CT volumes (``.nii``, ``.nii.gz``) through nibabel.

Any voxel orientation is brought to the way the same scan is shown as
DICOM: axial slices whose rows run anterior to posterior and whose columns
run from the patient's right to left, slices ordered along the superior
axis (nibabel axis codes ``('L', 'P', 'S')`` for the (column, row, slice)
array). A NIfTI converted from a DICOM series (dcm2niix and the like flip
DICOM's LPS coordinates to RAS and may store rows bottom-up) therefore gives
the DICOM series' slices in the same pixels, with ``z_mm`` the slice's
position along the superior-pointing normal (its superior coordinate for
axial scans). Spacing and slice interval come from the affine.
"""
from __future__ import annotations

import os.path as osp

import numpy as np

from a3d_det.datasets.ct_series.series import LPS_TO_RAS, CTSeries, SeriesError, note

__all__ = ['read_nifti_series', 'is_nifti', 'DISPLAY_AXCODES']

#: nibabel axis codes of the (column, row, slice) array of a CTSeries.
DISPLAY_AXCODES = ('L', 'P', 'S')


def is_nifti(path: str) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` or ``.nii.gz``)."""
    lower = path.lower()
    return lower.endswith('.nii') or lower.endswith('.nii.gz')


def _single(value: float) -> float:
    """The shortest decimal with ``value``'s single-precision value."""
    return float(str(np.float32(value)))


def _load(path: str):
    import nibabel as nib
    try:
        img = nib.load(path)
    except Exception as e:  # not NIfTI, truncated gzip, bad header
        raise SeriesError(f'{path}: cannot be read as NIfTI ({type(e).__name__}: '
                          f'{str(e).strip() or "unreadable"})') from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise SeriesError(f'{path}: not a NIfTI image ({type(img).__name__})')
    return img


def _spatial_shape(img, path: str) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in img.shape)
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        what = ('a 2D image' if len(shape) < 3 else
                f'{len(shape)}D data of shape {shape} (a time series or '
                'vector/non-spatial data)')
        raise SeriesError(f'{path}: expected a 3D CT volume, got {what}; '
                          'extract one 3D volume first')
    if img.get_data_dtype().names is not None or np.issubdtype(
            img.get_data_dtype(), np.complexfloating):
        raise SeriesError(f'{path}: voxels of type {img.get_data_dtype()} '
                          'are not grey values (RGB or complex data)')
    if min(shape[:3]) < 1:
        raise SeriesError(f'{path}: empty volume of shape {shape}')
    return shape[:3]


def read_nifti_series(path: str, slice_interval: float | None = None) -> CTSeries:
    """Read a CT volume from a NIfTI file, reoriented to DICOM's display.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file in Hounsfield units (its
            ``scl_slope``/``scl_inter`` applied).
        slice_interval: overrides the interval from the affine, mm.

    Raises:
        SeriesError: unreadable, not 3D (4D with more than one volume,
            vector data), or a degenerate affine.
    """
    from nibabel.orientations import (apply_orientation, axcodes2ornt,
                                      inv_ornt_aff, io_orientation, ornt_transform)

    notes: list[str] = []
    img = _load(path)
    shape = _spatial_shape(img, path)
    header = img.header
    if int(header.get('qform_code', 0)) == 0 and int(header.get('sform_code', 0)) == 0:
        note(notes, f'{osp.basename(path)}: no orientation in the header '
             '(qform and sform codes 0); assuming the voxel axes are RAS')
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise SeriesError(f'{path}: degenerate affine (voxel axes do not span space)')
    data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)

    # To (column, row, slice) = (L, P, S) voxel axes.
    to_display = ornt_transform(io_orientation(affine), axcodes2ornt(DISPLAY_AXCODES))
    display = apply_orientation(data, to_display)
    disp_affine = affine @ inv_ornt_aff(to_display, shape)
    back = ornt_transform(io_orientation(disp_affine), io_orientation(affine))
    volume = np.ascontiguousarray(display.transpose(2, 1, 0), dtype=np.float32)

    # NIfTI headers hold the affine in single precision: spacings are read
    # as the shortest decimals of their single-precision values and positions
    # rounded to 1e-5 mm, which gives back the decimal values of the DICOM
    # headers a converted volume came from.
    col_mm, row_mm, slice_mm = np.linalg.norm(disp_affine[:3, :3], axis=0)
    col_mm, row_mm = _single(col_mm), _single(row_mm)
    lps = LPS_TO_RAS @ disp_affine          # to DICOM patient coordinates
    normal = np.cross(lps[:3, 0], lps[:3, 1])
    normal /= np.linalg.norm(normal)
    n = volume.shape[0]
    origins = lps[:3, 3][None] + np.arange(n)[:, None] * lps[:3, 2][None]
    z_mm = np.round(origins @ normal, 5)
    obliq = abs(float(lps[:3, 2] @ normal)) / slice_mm
    if obliq < 0.999:
        note(notes, f'{osp.basename(path)}: slices are sheared against their '
             'normal (gantry tilt); the interval is measured along the normal')
    interval = _single(abs(lps[:3, 2] @ normal))
    if slice_interval is not None:
        if not slice_interval > 0:
            raise SeriesError(f'slice interval must be positive, got {slice_interval}')
        interval = float(slice_interval)
    pixel_spacing = (float(row_mm), float(col_mm))
    if abs(row_mm - col_mm) > 0.01 * max(row_mm, col_mm):
        note(notes, f'{osp.basename(path)}: anisotropic pixels {pixel_spacing} mm; '
             'using their mean')
    name = osp.basename(path)
    return CTSeries(
        volume=volume,
        spacing=float(np.mean(pixel_spacing)),
        pixel_spacing=pixel_spacing,
        slice_interval=interval,
        z_mm=np.asarray(z_mm, dtype=np.float64),
        sop_instance_uids=[None] * n,
        files=[name] * n,
        series_uid=name[:-7] if name.lower().endswith('.nii.gz') else osp.splitext(name)[0],
        notes=notes,
        affine=disp_affine,
        input_affine=affine,
        input_ornt=back,
        input_shape=tuple(int(s) for s in img.shape),
        frames=None)
