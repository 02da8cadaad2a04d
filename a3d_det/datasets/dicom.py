"""Reading a patient's CT for inference: a DICOM series, one DICOM file, or a
folder of DeepLesion-style 16-bit PNG slices.

The result is a :class:`CTSeries`: the volume in Hounsfield units ordered
along the slice normal, the in-plane pixel spacing, the slice interval and
per-slice identifiers, which is everything ``a3d_det.apis.inference_detector``
needs to build each key slice's input exactly as training does (the +-2 mm
neighbours of Sec. 3 of the paper are resampled from the slice interval).

Bad input raises :class:`SeriesError` with a message naming the file or the
problem; ``tools/infer.py`` prints it as one line. Recoverable oddities
(skipped files, irregular slice increments) are recorded in
``CTSeries.notes`` and also emitted as :class:`SeriesWarning`.
"""
from __future__ import annotations

import os
import os.path as osp
import re
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .deeplesion import SliceReadError, read_png_hu

__all__ = ['SeriesError', 'SeriesWarning', 'CTSeries', 'read_ct_series',
           'read_dicom_series', 'read_png_series']

# SOP class of a DICOMDIR (Media Storage Directory Storage).
MEDIA_STORAGE_DIRECTORY = '1.2.840.10008.1.3.10'
# Relative tolerance on slice increments before they count as irregular.
IRREGULAR_TOLERANCE = 0.1


class SeriesError(ValueError):
    """The input cannot be read as one CT series (the message says why)."""


class SeriesWarning(UserWarning):
    """Something odd but recoverable about the input series."""


@dataclass
class CTSeries:
    """One CT series in memory, slices ordered along the slice normal.

    Attributes:
        volume: (N, H, W) float32 Hounsfield units; ``volume[0]`` is the
            slice with the smallest position along the slice normal.
        spacing: in-plane pixel spacing, mm/px (mean of rows and columns),
            or ``None`` when unknown (PNG input without ``spacing``).
        pixel_spacing: (row, column) spacing in mm, or ``None``.
        slice_interval: distance between neighbouring slices, mm.
        z_mm: (N,) float64 position of each slice along the slice normal, mm.
        sop_instance_uids: per slice, the DICOM SOPInstanceUID (``None`` for
            PNG input).
        files: per slice, the path it was read from.
        series_uid: SeriesInstanceUID (the folder name for PNG input).
        modality: DICOM Modality (``'CT'``).
        patient_id, study_uid, series_description: DICOM identifiers when
            present, else ``None``.
        notes: human-readable notes about skipped files and irregularities.
    """

    volume: np.ndarray
    spacing: Optional[float]
    slice_interval: float
    z_mm: np.ndarray
    sop_instance_uids: List[Optional[str]]
    files: List[str]
    series_uid: Optional[str] = None
    modality: str = 'CT'
    pixel_spacing: Optional[Tuple[float, float]] = None
    patient_id: Optional[str] = None
    study_uid: Optional[str] = None
    series_description: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    @property
    def num_slices(self) -> int:
        """Number of slices N."""
        return int(self.volume.shape[0])

    def info(self) -> Dict[str, object]:
        """Series description for ``detections.json`` (JSON-serialisable)."""
        return dict(
            uid=self.series_uid,
            modality=self.modality,
            patient_id=self.patient_id,
            study_uid=self.study_uid,
            series_description=self.series_description,
            spacing=self.spacing,
            pixel_spacing=(list(self.pixel_spacing)
                           if self.pixel_spacing is not None else None),
            slice_interval=self.slice_interval,
            n_slices=self.num_slices,
            shape=[int(s) for s in self.volume.shape[1:]],
        )


def _note(notes: List[str], message: str) -> None:
    notes.append(message)
    warnings.warn(message, SeriesWarning, stacklevel=3)


def read_ct_series(path: str,
                   series_uid: Optional[str] = None,
                   slice_interval: Optional[float] = None,
                   spacing: Optional[float] = None) -> CTSeries:
    """Read a CT for inference from a DICOM folder, a DICOM file or a PNG folder.

    A folder that holds ``*.png`` files is read as DeepLesion-style slices
    (see :func:`read_png_series`); anything else as DICOM
    (see :func:`read_dicom_series`).

    Args:
        path: folder or file.
        series_uid: SeriesInstanceUID to pick when a folder holds several.
        slice_interval: slice interval in mm. Required for PNG folders; for
            DICOM it overrides the interval derived from the positions.
        spacing: in-plane spacing in mm/px for PNG folders (DICOM takes it
            from PixelSpacing).

    Raises:
        SeriesError: the input is missing, empty, not CT, ambiguous or
            unreadable.
    """
    if not osp.exists(path):
        raise SeriesError(f'{path}: no such file or folder')
    if osp.isdir(path):
        names = os.listdir(path)
        if not names:
            raise SeriesError(f'{path}: the folder is empty')
        if any(n.lower().endswith('.png') for n in names):
            return read_png_series(path, slice_interval=slice_interval,
                                   spacing=spacing)
    return read_dicom_series(path, series_uid=series_uid,
                             slice_interval=slice_interval)


# --------------------------------------------------------------------- PNG
def read_png_series(folder: str, slice_interval: Optional[float],
                    spacing: Optional[float] = None) -> CTSeries:
    """Read a folder of DeepLesion-style 16-bit PNG slices (HU = value - 32768).

    Slices are ordered by the number in their file names (``001.png``,
    ``002.png``, ...), as in DeepLesion's ``Images_png/PPPPPP_SS_RR/``;
    files that are not PNG are skipped with a note.

    Args:
        folder: the folder of slices.
        slice_interval: slice interval in mm (PNG files do not carry it).
        spacing: in-plane spacing in mm/px, or ``None`` when unknown.
    """
    if slice_interval is None:
        raise SeriesError(f'{folder}: PNG slices carry no slice interval; '
                          'give it (--slice-interval MM)')
    if not slice_interval > 0:
        raise SeriesError(f'slice interval must be positive, got {slice_interval}')
    notes: List[str] = []
    pngs, others = [], []
    for name in sorted(os.listdir(folder)):
        full = osp.join(folder, name)
        if not osp.isfile(full):
            continue
        (pngs if name.lower().endswith('.png') else others).append(name)
    if others:
        _note(notes, f'skipped {len(others)} non-PNG file(s) in {folder}: '
              + ', '.join(others[:5]) + (' ...' if len(others) > 5 else ''))

    def number(name: str) -> Tuple[int, str]:
        digits = re.findall(r'\d+', osp.splitext(name)[0])
        return (int(digits[-1]) if digits else -1, name)

    pngs.sort(key=number)
    slices, files = [], []
    for name in pngs:
        full = osp.join(folder, name)
        try:
            slices.append(read_png_hu(full))  # HU = value - 32768
        except SliceReadError as e:
            raise SeriesError(str(e)) from None
        files.append(full)
    volume = _stack(slices, files)
    n = volume.shape[0]
    return CTSeries(
        volume=volume,
        spacing=float(spacing) if spacing is not None else None,
        pixel_spacing=(float(spacing), float(spacing)) if spacing is not None else None,
        slice_interval=float(slice_interval),
        z_mm=np.arange(n, dtype=np.float64) * float(slice_interval),
        sop_instance_uids=[None] * n,
        files=files,
        series_uid=osp.basename(osp.normpath(folder)),
        notes=notes)


# ------------------------------------------------------------------- DICOM
def _list_files(path: str) -> List[str]:
    if osp.isfile(path):
        return [path]
    out = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            out.append(osp.join(root, name))
    return out


def _read_headers(files: Sequence[str], notes: List[str]) -> Tuple[list, List[str]]:
    """Read every DICOM file lazily (pixel data deferred).

    Returns the (path, dataset) pairs and the descriptions of DICOM files that
    could not be read; non-DICOM files are skipped with a note.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.misc import is_dicom

    datasets, non_dicom, not_images, unreadable = [], [], [], []
    for f in files:
        try:
            if not is_dicom(f):
                # A DICOM file without the 128-byte preamble: accept it only
                # when forced reading finds image identifiers.
                with warnings.catch_warnings():  # pydicom's guesses on non-DICOM
                    warnings.simplefilter('ignore')
                    ds = pydicom.dcmread(f, force=True, defer_size=1024)
                if 'SeriesInstanceUID' not in ds or 'SOPInstanceUID' not in ds:
                    non_dicom.append(f)
                    continue
            else:
                ds = pydicom.dcmread(f, defer_size=1024)
        except InvalidDicomError:
            non_dicom.append(f)
            continue
        except Exception as e:  # truncated or corrupt DICOM
            unreadable.append(f'{osp.basename(f)} ({type(e).__name__}: {e})')
            continue
        meta_class = getattr(getattr(ds, 'file_meta', None), 'MediaStorageSOPClassUID', None)
        if (meta_class == MEDIA_STORAGE_DIRECTORY or 'DirectoryRecordSequence' in ds
                or _get(ds, 'SOPClassUID') == MEDIA_STORAGE_DIRECTORY):
            not_images.append(f)  # a DICOMDIR index
            continue
        if 'SOPInstanceUID' not in ds:
            unreadable.append(f'{osp.basename(f)} (incomplete: no SOPInstanceUID)')
            continue
        if 'SeriesInstanceUID' not in ds:
            not_images.append(f)
            continue
        datasets.append((f, ds))
    for what, skipped in (('non-DICOM file(s)', non_dicom),
                          ('DICOM file(s) that are not images (DICOMDIR, no '
                           'SeriesInstanceUID)', not_images)):
        if skipped:
            names = [osp.basename(f) for f in skipped]
            _note(notes, f'skipped {len(skipped)} {what}: '
                  + ', '.join(names[:5]) + (' ...' if len(names) > 5 else ''))
    return datasets, unreadable


def _get(ds, keyword: str):
    value = ds.get(keyword)
    return None if value is None or value == '' else value


def _slice_normal(ds) -> Optional[np.ndarray]:
    """Unit normal of the image plane from ImageOrientationPatient."""
    iop = _get(ds, 'ImageOrientationPatient')
    if iop is None or len(iop) != 6:
        return None
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    return normal / norm if norm > 0 else None


def read_dicom_series(path: str, series_uid: Optional[str] = None,
                      slice_interval: Optional[float] = None) -> CTSeries:
    """Read one CT series from a folder of DICOM files (any names) or one file.

    Slices are ordered by their position along the slice normal
    (ImagePositionPatient . (row x column of ImageOrientationPatient)), or by
    InstanceNumber when positions are missing. Pixel values become HU through
    the modality LUT (RescaleSlope / RescaleIntercept). The slice interval is
    the median increment of the positions (SpacingBetweenSlices or
    SliceThickness when there is a single slice or no positions), with a note
    when the increments are irregular.

    Args:
        path: a folder (searched recursively) or a single DICOM file.
        series_uid: the SeriesInstanceUID to read when the folder holds several.
        slice_interval: overrides the derived slice interval, mm.

    Raises:
        SeriesError: no DICOM files, several series and no ``series_uid``,
            the series is not CT, pixel data missing or undecodable, slices of
            different sizes, or no way to know the slice interval.
    """
    from pydicom.pixels import apply_modality_lut

    notes: List[str] = []
    files = _list_files(path)
    if not files:
        raise SeriesError(f'{path}: the folder is empty')
    datasets, failed = _read_headers(files, notes)
    if not datasets:
        why = [f'{len(failed)} unreadable: {failed[0]}'] if failed else []
        why += [n for n in notes if n.startswith('skipped')]
        raise SeriesError(f'{path}: no readable DICOM files among {len(files)} '
                          f'file(s) ({"; ".join(why)})')

    # 1. One series: group by SeriesInstanceUID.
    groups: Dict[str, list] = {}
    for f, ds in datasets:
        groups.setdefault(str(_get(ds, 'SeriesInstanceUID') or '<no SeriesInstanceUID>'),
                          []).append((f, ds))
    if series_uid is not None:
        if series_uid not in groups:
            raise SeriesError(f'{path}: no series with UID {series_uid}; found '
                              + _describe_series(groups))
        chosen = groups[series_uid]
    elif len(groups) > 1:
        raise SeriesError(f'{path} holds {len(groups)} series, pick one with '
                          f'--series UID: {_describe_series(groups)}')
    else:
        series_uid, chosen = next(iter(groups.items()))

    # 2. CT only.
    modalities = sorted({str(_get(ds, 'Modality') or 'unknown') for _, ds in chosen})
    if modalities != ['CT']:
        raise SeriesError(f'series {series_uid} is {"/".join(modalities)}, not CT; '
                          'the detector was trained on CT (Hounsfield units)')
    for f, ds in chosen:
        if 'PixelData' not in ds:
            raise SeriesError(f'{f}: no pixel data (the DICOM file has no '
                              'PixelData element)')
        if int(_get(ds, 'NumberOfFrames') or 1) > 1:
            raise SeriesError(f'{f}: multi-frame (enhanced) CT is not '
                              'supported; export the series as single-frame '
                              'DICOM files')

    # 3. Order along the slice normal (InstanceNumber as fallback).
    normal = _slice_normal(chosen[0][1])
    positions = None
    if normal is not None and all(_get(ds, 'ImagePositionPatient') is not None
                                  for _, ds in chosen):
        normals = [_slice_normal(ds) for _, ds in chosen]
        if any(n is None or abs(float(n @ normal)) < 0.999 for n in normals):
            _note(notes, f'series {series_uid}: slices have different '
                  'orientations; ordering along the first slice normal')
        positions = np.array([float(np.asarray(ds.ImagePositionPatient, float) @ normal)
                              for _, ds in chosen])
        order = np.argsort(positions, kind='stable')
        positions = positions[order]
    elif all(_get(ds, 'InstanceNumber') is not None for _, ds in chosen):
        if len(chosen) > 1:
            _note(notes, f'series {series_uid}: no ImagePositionPatient/'
                  'ImageOrientationPatient; ordering by InstanceNumber')
        order = np.argsort([int(ds.InstanceNumber) for _, ds in chosen], kind='stable')
    else:
        if len(chosen) > 1:
            _note(notes, f'series {series_uid}: neither slice positions nor '
                  'InstanceNumber; ordering by file name')
        order = np.arange(len(chosen))
    chosen = [chosen[i] for i in order]

    # 4. Pixels -> HU (modality LUT: RescaleSlope / RescaleIntercept). Files
    # whose pixel data cannot be read are skipped and counted.
    slices, kept = [], []
    for i, (f, ds) in enumerate(chosen):
        try:
            arr = ds.pixel_array
        except Exception as e:
            ts = getattr(getattr(ds, 'file_meta', None), 'TransferSyntaxUID', None)
            failed.append(f'{osp.basename(f)} (transfer syntax '
                          f'{getattr(ts, "name", ts)}: {e})')
            continue
        if arr.ndim != 2:
            raise SeriesError(f'{f}: expected a single grey-level image, got '
                              f'pixel data of shape {arr.shape}')
        slices.append(np.asarray(apply_modality_lut(arr, ds), dtype=np.float32))
        kept.append(i)
    if not slices:
        raise SeriesError(f'series {series_uid}: cannot decode the pixel data '
                          f'of any file, e.g. {failed[0]}')
    if failed:
        _note(notes, f'skipped {len(failed)} unreadable DICOM file(s): '
              + '; '.join(failed[:3]) + (' ...' if len(failed) > 3 else ''))
    chosen = [chosen[i] for i in kept]
    volume = _stack(slices, [f for f, _ in chosen])
    if positions is not None:
        positions = positions[kept]
        dup = np.flatnonzero(np.diff(positions) < 1e-3)
        if dup.size:
            a, b = chosen[dup[0]][0], chosen[dup[0] + 1][0]
            raise SeriesError(
                f'series {series_uid}: {dup.size + 1} slices share a position '
                f'(e.g. {osp.basename(a)} and {osp.basename(b)}); the folder '
                'seems to hold several acquisitions of one series')

    # 5. Slice interval.
    first = chosen[0][1]
    fallback = _get(first, 'SpacingBetweenSlices') or _get(first, 'SliceThickness')
    if slice_interval is not None:
        if not slice_interval > 0:
            raise SeriesError(f'slice interval must be positive, got {slice_interval}')
        interval = float(slice_interval)
    elif positions is not None and len(positions) > 1:
        steps = np.diff(positions)
        interval = float(np.median(steps))
        if np.abs(steps - interval).max() > IRREGULAR_TOLERANCE * interval:
            _note(notes, f'series {series_uid}: irregular slice increments '
                  f'({steps.min():.3g} to {steps.max():.3g} mm); using the '
                  f'median {interval:.3g} mm')
    elif fallback is not None and float(fallback) > 0:
        interval = float(fallback)
    else:
        raise SeriesError(f'series {series_uid}: cannot tell the slice interval '
                          '(no positions, SpacingBetweenSlices or SliceThickness); '
                          'give it (--slice-interval MM)')
    if positions is None:
        positions = np.arange(len(chosen), dtype=np.float64) * interval

    ps = _get(first, 'PixelSpacing')
    pixel_spacing = (float(ps[0]), float(ps[1])) if ps is not None else None
    if pixel_spacing is None:
        _note(notes, f'series {series_uid}: no PixelSpacing; lesion sizes in mm '
              'are unavailable')
    elif abs(pixel_spacing[0] - pixel_spacing[1]) > 0.01 * max(pixel_spacing):
        _note(notes, f'series {series_uid}: anisotropic pixels {pixel_spacing} mm; '
              'using their mean')
    return CTSeries(
        volume=volume,
        spacing=float(np.mean(pixel_spacing)) if pixel_spacing else None,
        pixel_spacing=pixel_spacing,
        slice_interval=interval,
        z_mm=np.asarray(positions, dtype=np.float64),
        sop_instance_uids=[str(_get(ds, 'SOPInstanceUID')) if _get(ds, 'SOPInstanceUID')
                           else None for _, ds in chosen],
        files=[f for f, _ in chosen],
        series_uid=series_uid,
        modality='CT',
        patient_id=_str_or_none(_get(first, 'PatientID')),
        study_uid=_str_or_none(_get(first, 'StudyInstanceUID')),
        series_description=_str_or_none(_get(first, 'SeriesDescription')),
        notes=notes)


def _stack(slices: List[np.ndarray], files: List[str]) -> np.ndarray:
    """(N, H, W) float32 volume; every slice must have the first one's size."""
    for hu, f in zip(slices, files):
        if hu.shape != slices[0].shape:
            raise SeriesError(f'{f}: size {hu.shape} differs from the first '
                              f'slice of the series {slices[0].shape}')
    return np.stack(slices, axis=0)


def _str_or_none(value) -> Optional[str]:
    return None if value is None else str(value)


def _describe_series(groups: Dict[str, list]) -> str:
    parts = []
    for uid, members in list(groups.items())[:10]:
        ds = members[0][1]
        desc = _get(ds, 'SeriesDescription')
        parts.append(f'{uid} ({_get(ds, "Modality") or "?"}, {len(members)} file(s)'
                     + (f', "{desc}"' if desc else '') + ')')
    if len(groups) > 10:
        parts.append(f'... and {len(groups) - 10} more')
    return '; '.join(parts)
