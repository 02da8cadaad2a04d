"""The in-memory CT series every reader returns, and the errors they raise.

A :class:`CTSeries` holds the volume in Hounsfield units ordered along the
slice normal, the in-plane pixel spacing, the slice interval, per-slice
identifiers and the geometry (an affine from voxel indices to patient
coordinates), which is everything ``a3d_det.apis.inference_detector`` needs
to build each key slice's input exactly as training does and everything
``tools/infer.py`` needs to write results back on the input's grid.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ['SeriesError', 'SeriesWarning', 'CTSeries', 'note', 'stack_slices',
           'LPS_TO_RAS']

#: Flips x and y: DICOM patient coordinates (LPS) <-> NIfTI world (RAS).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


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
        slice_interval: distance between neighbouring slices, mm.
        z_mm: (N,) float64 position of each slice along the slice normal, mm
            (for axial slices: the superior coordinate).
        sop_instance_uids: per slice, the DICOM SOPInstanceUID (``None`` for
            PNG and NIfTI input).
        files: per slice, the path it was read from.
        series_uid: SeriesInstanceUID (the folder or file name otherwise).
        modality: DICOM Modality (``'CT'``).
        pixel_spacing: (row, column) spacing in mm, or ``None``.
        patient_id, study_uid, series_description: DICOM identifiers when
            present, else ``None``.
        notes: human-readable notes about skipped files and irregularities.
        affine: (4, 4) map from voxel indices (column, row, slice) of
            ``volume.transpose(2, 1, 0)`` to RAS+ world mm (NIfTI's
            convention), or ``None`` when the geometry is unknown.
        input_affine, input_ornt, input_shape: for NIfTI input, the file's
            own affine, the nibabel orientation transform from the
            (column, row, slice) array to the file's array, and the file's
            shape, so results can be written on the input's grid.
        frames: per slice, the frame number within its file for enhanced
            (multi-frame) DICOM (0-based), else ``None``.
    """

    volume: np.ndarray
    spacing: float | None
    slice_interval: float
    z_mm: np.ndarray
    sop_instance_uids: list[str | None]
    files: list[str]
    series_uid: str | None = None
    modality: str = 'CT'
    pixel_spacing: tuple[float, float] | None = None
    patient_id: str | None = None
    study_uid: str | None = None
    series_description: str | None = None
    notes: list[str] = field(default_factory=list)
    affine: np.ndarray | None = None
    input_affine: np.ndarray | None = None
    input_ornt: np.ndarray | None = None
    input_shape: tuple[int, ...] | None = None
    frames: list[int | None] | None = None

    @property
    def num_slices(self) -> int:
        """Number of slices N."""
        return int(self.volume.shape[0])

    def info(self) -> dict[str, object]:
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


def note(notes: list[str], message: str) -> None:
    """Record a recoverable oddity and emit it as a :class:`SeriesWarning`."""
    notes.append(message)
    warnings.warn(message, SeriesWarning, stacklevel=3)


def stack_slices(slices: list[np.ndarray], files: list[str]) -> np.ndarray:
    """(N, H, W) float32 volume; every slice must have the first one's size."""
    for hu, f in zip(slices, files):
        if hu.shape != slices[0].shape:
            raise SeriesError(f'{f}: size {hu.shape} differs from the first '
                              f'slice of the series {slices[0].shape}')
    return np.stack(slices, axis=0).astype(np.float32, copy=False)


def str_or_none(value) -> str | None:
    """``str(value)``, or ``None`` for a missing value."""
    return None if value is None else str(value)
