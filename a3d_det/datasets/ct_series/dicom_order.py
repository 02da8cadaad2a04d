"""DICOM step 3: order the slices along the normal, measure the interval,
and build the series' affine (voxel indices -> patient coordinates)."""
from __future__ import annotations

import os.path as osp

import numpy as np

from a3d_det.datasets.ct_series.dicom_frames import DicomFrame
from a3d_det.datasets.ct_series.series import LPS_TO_RAS, SeriesError, note

__all__ = ['order_frames', 'check_positions', 'slice_interval', 'dicom_affine']

# Relative tolerance on slice increments before they count as irregular.
IRREGULAR_TOLERANCE = 0.1


def order_frames(frames: list[DicomFrame], series_uid: str,
                 notes: list[str]) -> tuple[list[DicomFrame], np.ndarray | None]:
    """Sort the frames along the first frame's slice normal.

    The position of a frame is ImagePositionPatient . (row x column of
    ImageOrientationPatient). Without positions the frames are ordered by
    InstanceNumber (and frame number), else kept in file-name order, with a
    note.

    Returns:
        (ordered frames, their positions along the normal in mm, or ``None``
        when the frames carry no positions).
    """
    normal = frames[0].normal
    if normal is not None and all(fr.position is not None for fr in frames):
        if any(fr.normal is None or abs(float(fr.normal @ normal)) < 0.999
               for fr in frames):
            note(notes, f'series {series_uid}: slices have different '
                 'orientations; ordering along the first slice normal')
        positions = np.array([float(fr.position @ normal) for fr in frames])
        order = np.argsort(positions, kind='stable')
        return [frames[i] for i in order], positions[order]
    if all(fr.order_key is not None for fr in frames):
        if len(frames) > 1:
            note(notes, f'series {series_uid}: no ImagePositionPatient/'
                 'ImageOrientationPatient; ordering by InstanceNumber'
                 + (' and frame number' if any(fr.frame is not None for fr in frames)
                    else ''))
        order = sorted(range(len(frames)), key=lambda i: frames[i].order_key)
        return [frames[i] for i in order], None
    if len(frames) > 1:
        note(notes, f'series {series_uid}: neither slice positions nor '
             'InstanceNumber; ordering by file name')
    return list(frames), None


def _name(fr: DicomFrame) -> str:
    base = osp.basename(fr.file)
    return base if fr.frame is None else f'{base} frame {fr.frame + 1}'


def check_positions(frames: list[DicomFrame], positions: np.ndarray | None,
                    series_uid: str) -> None:
    """Refuse two slices at one position (several acquisitions mixed)."""
    if positions is None:
        return
    dup = np.flatnonzero(np.diff(positions) < 1e-3)
    if dup.size:
        a, b = frames[dup[0]], frames[dup[0] + 1]
        raise SeriesError(
            f'series {series_uid}: {dup.size + 1} slices share a position '
            f'(e.g. {_name(a)} and {_name(b)}); the folder '
            'seems to hold several acquisitions of one series')


def slice_interval(frames: list[DicomFrame], positions: np.ndarray | None,
                   series_uid: str, notes: list[str],
                   override: float | None = None) -> float:
    """The slice interval in mm.

    The median increment of the positions, with a note when the increments
    are irregular; with a single slice or no positions, SpacingBetweenSlices
    or SliceThickness; ``override`` wins.
    """
    if override is not None:
        if not override > 0:
            raise SeriesError(f'slice interval must be positive, got {override}')
        return float(override)
    if positions is not None and len(positions) > 1:
        steps = np.diff(positions)
        interval = float(np.median(steps))
        if np.abs(steps - interval).max() > IRREGULAR_TOLERANCE * interval:
            note(notes, f'series {series_uid}: irregular slice increments '
                 f'({steps.min():.3g} to {steps.max():.3g} mm); using the '
                 f'median {interval:.3g} mm')
        return interval
    if frames[0].thickness is not None:
        return frames[0].thickness
    raise SeriesError(f'series {series_uid}: cannot tell the slice interval '
                      '(no positions, SpacingBetweenSlices or SliceThickness); '
                      'give it (--slice-interval MM)')


def dicom_affine(frames: list[DicomFrame], interval: float) -> np.ndarray | None:
    """(4, 4) map from (column, row, slice) indices to RAS+ world mm.

    Columns run along the row direction of ImageOrientationPatient by the
    column spacing, rows along its column direction by the row spacing,
    slices from the first slice's position to the last one's (the slice
    normal times the interval for one slice). DICOM's LPS patient
    coordinates become NIfTI's RAS by flipping x and y. ``None`` without
    orientation, positions or pixel spacing.
    """
    first = frames[0]
    if (first.orientation is None or first.pixel_spacing is None
            or any(fr.position is None for fr in frames)):
        return None
    row_dir, col_dir = first.orientation[:3], first.orientation[3:]
    lps = np.eye(4)
    lps[:3, 0] = row_dir * first.pixel_spacing[1]
    lps[:3, 1] = col_dir * first.pixel_spacing[0]
    if len(frames) > 1:
        lps[:3, 2] = (frames[-1].position - first.position) / (len(frames) - 1)
    else:
        lps[:3, 2] = first.normal * interval
    lps[:3, 3] = first.position
    return LPS_TO_RAS @ lps
