"""DICOM step 4: decode the pixel data and convert it to Hounsfield units.

Compressed transfer syntaxes (JPEG baseline/extended, JPEG lossless, JPEG-LS,
JPEG 2000, RLE) decode through pydicom's pixel-data plugins, which the
runtime requirements install (``pylibjpeg`` with ``pylibjpeg-libjpeg``,
``pylibjpeg-openjpeg`` and ``pylibjpeg-rle``). Files that still cannot be
decoded are skipped with a note naming them and their transfer syntax; when
no file is left the series is refused.
"""
from __future__ import annotations

import os.path as osp

import numpy as np

from a3d_det.datasets.ct_series.dicom_frames import DicomFrame
from a3d_det.datasets.ct_series.series import SeriesError, note

__all__ = ['decode_frames', 'frame_to_hu']


def transfer_syntax(ds) -> str:
    """``name (UID)`` of a dataset's transfer syntax, for messages."""
    uid = getattr(getattr(ds, 'file_meta', None), 'TransferSyntaxUID', None)
    if uid is None:
        return 'unknown transfer syntax'
    name = getattr(uid, 'name', str(uid))
    return f'{name} ({uid})' if name != str(uid) else str(uid)


def frame_to_hu(arr: np.ndarray, frame: DicomFrame) -> np.ndarray:
    """Stored values -> HU: the frame's rescale for multi-frame files, the
    modality LUT (RescaleSlope / RescaleIntercept, or a Modality LUT
    Sequence) for single-frame files."""
    if frame.rescale is not None:
        slope, intercept = frame.rescale
        return (arr.astype(np.float32) * np.float32(slope)
                + np.float32(intercept)).astype(np.float32)
    from pydicom.pixels import apply_modality_lut
    return np.asarray(apply_modality_lut(arr, frame.ds), dtype=np.float32)


def _decode_file(ds) -> np.ndarray:
    return ds.pixel_array


def _release(ds) -> None:
    """Drop a decoded file's pixel data and pydicom's cached array (a long
    series would otherwise hold its pixels three times)."""
    if 'PixelData' in ds:
        del ds.PixelData
    if getattr(ds, '_pixel_array', None) is not None:
        ds._pixel_array = None


def decode_frames(frames: list[DicomFrame], series_uid: str, notes: list[str],
                  unreadable: list[str] | None = None
                  ) -> tuple[list[np.ndarray], list[int]]:
    """Decode every frame to an (H, W) float32 HU slice.

    Each file is decoded once (all of its frames), then released. Files
    whose pixel data cannot be decoded are skipped; the note lists them
    grouped by transfer syntax, with the decoder's message.

    Args:
        frames: in slice order.
        series_uid: for messages.
        notes: the note about skipped files is appended here.
        unreadable: descriptions of files that failed earlier (headers),
            reported in the same note.

    Returns:
        (HU slices, the indices into ``frames`` they come from).

    Raises:
        SeriesError: no frame could be decoded, or the pixel data is not a
            grey-level image.
    """
    unreadable = list(unreadable or [])
    remaining: dict[str, int] = {}
    for fr in frames:
        remaining[fr.file] = remaining.get(fr.file, 0) + 1
    cache: dict[str, np.ndarray] = {}
    failed: dict[str, tuple[list[str], str]] = {}   # syntax -> (files, message)
    failed_files: set[str] = set()
    slices, kept = [], []
    for i, fr in enumerate(frames):
        if fr.file in failed_files:
            continue
        if fr.file not in cache:
            try:
                cache[fr.file] = _decode_file(fr.ds)
            except Exception as e:  # no plugin for the syntax, corrupt data
                syntax = transfer_syntax(fr.ds)
                names, _ = failed.setdefault(syntax, ([], f'{type(e).__name__}: {e}'))
                names.append(osp.basename(fr.file))
                failed_files.add(fr.file)
                continue
        arr = cache[fr.file]
        if fr.frame is not None and not (arr.ndim == 2 and fr.frame == 0):
            # (frames, H, W); a one-frame enhanced file decodes to (H, W)
            if arr.ndim == 3 and fr.frame < arr.shape[0]:
                arr = arr[fr.frame]
            else:
                raise SeriesError(f'{fr.file}: frame {fr.frame + 1} missing from '
                                  f'pixel data of shape {arr.shape}')
        if arr.ndim != 2:
            raise SeriesError(f'{fr.file}: expected a single grey-level image, got '
                              f'pixel data of shape {arr.shape}')
        slices.append(frame_to_hu(arr, fr))
        kept.append(i)
        remaining[fr.file] -= 1
        if not remaining[fr.file]:
            del cache[fr.file]
            _release(fr.ds)
    parts = [f'{len(names)} file(s) in transfer syntax {syntax}: '
             + ', '.join(names[:5]) + (' ...' if len(names) > 5 else '')
             + f' ({message})'
             for syntax, (names, message) in failed.items()]
    if not slices:
        raise SeriesError(f'series {series_uid}: cannot decode the pixel data '
                          'of any file: ' + '; '.join(parts + unreadable[:3]))
    n_failed = len(unreadable) + len(failed_files)
    if n_failed:
        shown = parts + unreadable[:3]
        note(notes, f'skipped {n_failed} unreadable DICOM file(s): '
             + '; '.join(shown) + (' ...' if len(unreadable) > 3 else ''))
    return slices, kept
