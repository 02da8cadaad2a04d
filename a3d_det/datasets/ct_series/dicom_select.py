"""DICOM step 1: find the files of one CT series.

Every file under the input is read lazily (pixel data deferred); files that
are not DICOM, DICOMDIR indexes and unreadable files are skipped with a
note, and the files are grouped by SeriesInstanceUID so that exactly one CT
series is chosen.
"""
from __future__ import annotations

import os
import os.path as osp
import warnings

from a3d_det.datasets.ct_series.series import SeriesError, note

__all__ = ['list_files', 'read_headers', 'select_series', 'get']

# SOP class of a DICOMDIR (Media Storage Directory Storage).
MEDIA_STORAGE_DIRECTORY = '1.2.840.10008.1.3.10'


def get(ds, keyword: str):
    """``ds.keyword``, or ``None`` when absent or empty."""
    value = ds.get(keyword)
    return None if value is None or value == '' else value


def list_files(path: str) -> list[str]:
    """``path`` itself when it is a file, else every file below it, sorted."""
    if osp.isfile(path):
        return [path]
    out = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            out.append(osp.join(root, name))
    return out


def _read_one(f: str):
    """The dataset of ``f`` (pixel data deferred), or ``None`` if not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.misc import is_dicom

    try:
        if is_dicom(f):
            return pydicom.dcmread(f, defer_size=1024)
        # A DICOM file without the 128-byte preamble: accept it only when
        # forced reading finds image identifiers.
        with warnings.catch_warnings():  # pydicom's guesses on non-DICOM
            warnings.simplefilter('ignore')
            ds = pydicom.dcmread(f, force=True, defer_size=1024)
    except InvalidDicomError:
        return None
    if 'SeriesInstanceUID' not in ds or 'SOPInstanceUID' not in ds:
        return None
    return ds


def read_headers(files: list[str], notes: list[str]) -> tuple[list, list[str]]:
    """Read every DICOM file lazily (pixel data deferred).

    Returns:
        The (path, dataset) pairs of DICOM images and the descriptions of
        DICOM files that could not be read; non-DICOM files and DICOMDIR
        indexes are skipped with a note.
    """
    datasets, non_dicom, not_images, unreadable = [], [], [], []
    for f in files:
        try:
            ds = _read_one(f)
        except Exception as e:  # truncated or corrupt DICOM
            unreadable.append(f'{osp.basename(f)} ({type(e).__name__}: {e})')
            continue
        if ds is None:
            non_dicom.append(f)
            continue
        meta_class = getattr(getattr(ds, 'file_meta', None), 'MediaStorageSOPClassUID', None)
        if (meta_class == MEDIA_STORAGE_DIRECTORY or 'DirectoryRecordSequence' in ds
                or get(ds, 'SOPClassUID') == MEDIA_STORAGE_DIRECTORY):
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
            note(notes, f'skipped {len(skipped)} {what}: '
                 + ', '.join(names[:5]) + (' ...' if len(names) > 5 else ''))
    return datasets, unreadable


def describe_series(groups: dict[str, list]) -> str:
    """``UID (modality, n file(s), "description"); ...`` for error messages."""
    parts = []
    for uid, members in list(groups.items())[:10]:
        ds = members[0][1]
        desc = get(ds, 'SeriesDescription')
        parts.append(f'{uid} ({get(ds, "Modality") or "?"}, {len(members)} file(s)'
                     + (f', "{desc}"' if desc else '') + ')')
    if len(groups) > 10:
        parts.append(f'... and {len(groups) - 10} more')
    return '; '.join(parts)


def select_series(datasets: list, path: str,
                  series_uid: str | None = None) -> tuple[str, list]:
    """Choose one CT series among the (path, dataset) pairs.

    Args:
        datasets: from :func:`read_headers`.
        path: the input, for messages.
        series_uid: the SeriesInstanceUID to pick when there are several.

    Returns:
        (series UID, its (path, dataset) pairs in input order).

    Raises:
        SeriesError: several series and no ``series_uid``, no series with
            that UID, the series is not CT, or a file has no pixel data.
    """
    groups: dict[str, list] = {}
    for f, ds in datasets:
        groups.setdefault(str(get(ds, 'SeriesInstanceUID') or '<no SeriesInstanceUID>'),
                          []).append((f, ds))
    if series_uid is not None:
        if series_uid not in groups:
            raise SeriesError(f'{path}: no series with UID {series_uid}; found '
                              + describe_series(groups))
        chosen = groups[series_uid]
    elif len(groups) > 1:
        raise SeriesError(f'{path} holds {len(groups)} series, pick one with '
                          f'--series UID: {describe_series(groups)}')
    else:
        series_uid, chosen = next(iter(groups.items()))

    modalities = sorted({str(get(ds, 'Modality') or 'unknown') for _, ds in chosen})
    if modalities != ['CT']:
        raise SeriesError(f'series {series_uid} is {"/".join(modalities)}, not CT; '
                          'the detector was trained on CT (Hounsfield units)')
    for f, ds in chosen:
        if 'PixelData' not in ds:
            raise SeriesError(f'{f}: no pixel data (the DICOM file has no '
                              'PixelData element)')
    return series_uid, chosen
