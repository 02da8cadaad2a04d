"""One CT series from DICOM files, in four steps each testable alone:
select the series (:mod:`.dicom_select`), list its frames and order them
along the normal (:mod:`.dicom_frames`, :mod:`.dicom_order`), decode to HU
(:mod:`.dicom_decode`), then measure the slice interval."""
from __future__ import annotations

import numpy as np

from a3d_det.datasets.ct_series.dicom_decode import decode_frames
from a3d_det.datasets.ct_series.dicom_frames import expand_frames
from a3d_det.datasets.ct_series.dicom_order import check_positions, dicom_affine, order_frames
from a3d_det.datasets.ct_series.dicom_order import slice_interval as measure_interval
from a3d_det.datasets.ct_series.dicom_select import get, list_files, read_headers, select_series
from a3d_det.datasets.ct_series.series import CTSeries, SeriesError, note, stack_slices, str_or_none

__all__ = ['read_dicom_series']


def read_dicom_series(path: str, series_uid: str | None = None,
                      slice_interval: float | None = None) -> CTSeries:
    """Read one CT series from a folder of DICOM files (any names) or one file.

    Classic single-frame files and enhanced multi-frame files (each frame a
    slice, its geometry from the functional groups) combine. Slices are
    ordered by their position along the slice normal
    (ImagePositionPatient . (row x column of ImageOrientationPatient)), or
    by InstanceNumber when positions are missing. Pixel values become HU
    through the modality LUT (RescaleSlope / RescaleIntercept), compressed
    pixel data through pydicom's decoders. The slice interval is the median
    increment of the positions (SpacingBetweenSlices or SliceThickness when
    there is a single slice or no positions), with a note when the
    increments are irregular.

    Args:
        path: a folder (searched recursively) or a single DICOM file.
        series_uid: the SeriesInstanceUID to read when the folder holds several.
        slice_interval: overrides the derived slice interval, mm.

    Raises:
        SeriesError: no DICOM files, several series and no ``series_uid``,
            the series is not CT, pixel data missing or undecodable, slices of
            different sizes, or no way to know the slice interval.
    """
    notes: list[str] = []
    files = list_files(path)
    if not files:
        raise SeriesError(f'{path}: the folder is empty')
    datasets, failed = read_headers(files, notes)
    if not datasets:
        why = [f'{len(failed)} unreadable: {failed[0]}'] if failed else []
        why += [n for n in notes if n.startswith('skipped')]
        raise SeriesError(f'{path}: no readable DICOM files among {len(files)} '
                          f'file(s) ({"; ".join(why)})')

    # 1. One CT series.
    series_uid, members = select_series(datasets, path, series_uid)
    # 2. Its slices (frames of enhanced files included), ordered along z.
    frames = expand_frames(members, series_uid, notes)
    frames, positions = order_frames(frames, series_uid, notes)
    # 3. Pixels -> HU; undecodable files are skipped with a note.
    slices, kept = decode_frames(frames, series_uid, notes, failed)
    frames = [frames[i] for i in kept]
    positions = positions[kept] if positions is not None else None
    volume = stack_slices(slices, [fr.file for fr in frames])
    check_positions(frames, positions, series_uid)
    # 4. Slice interval.
    interval = measure_interval(frames, positions, series_uid, notes, slice_interval)
    if positions is None:
        positions = np.arange(len(frames), dtype=np.float64) * interval

    first = frames[0]
    pixel_spacing = first.pixel_spacing
    if pixel_spacing is None:
        note(notes, f'series {series_uid}: no PixelSpacing; lesion sizes in mm '
             'are unavailable')
    elif abs(pixel_spacing[0] - pixel_spacing[1]) > 0.01 * max(pixel_spacing):
        note(notes, f'series {series_uid}: anisotropic pixels {pixel_spacing} mm; '
             'using their mean')
    if len({fr.pixel_spacing for fr in frames}) > 1:
        note(notes, f'series {series_uid}: pixel spacing differs between slices; '
             f'using the first slice\'s {pixel_spacing} mm')
    ds = first.ds
    return CTSeries(
        volume=volume,
        spacing=float(np.mean(pixel_spacing)) if pixel_spacing else None,
        pixel_spacing=pixel_spacing,
        slice_interval=interval,
        z_mm=np.asarray(positions, dtype=np.float64),
        sop_instance_uids=[fr.sop_instance_uid for fr in frames],
        files=[fr.file for fr in frames],
        series_uid=series_uid,
        modality='CT',
        patient_id=str_or_none(get(ds, 'PatientID')),
        study_uid=str_or_none(get(ds, 'StudyInstanceUID')),
        series_description=str_or_none(get(ds, 'SeriesDescription')),
        notes=notes,
        affine=dicom_affine(frames, interval),
        frames=[fr.frame for fr in frames])
