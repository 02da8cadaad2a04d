"""DICOM step 2: the frames of a series, each with its own geometry.

A classic CT file holds one slice, its geometry in the top-level attributes.
An enhanced (multi-frame) CT file holds many: each frame's position,
orientation, pixel spacing and rescale come from its per-frame functional
group, else the shared one (PS3.3 C.7.6.16: PlanePositionSequence,
PlaneOrientationSequence, PixelMeasuresSequence,
PixelValueTransformationSequence), else the top level. Several files of one
series (single- or multi-frame) become one list of frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a3d_det.datasets.ct_series.dicom_select import get
from a3d_det.datasets.ct_series.series import note

__all__ = ['DicomFrame', 'expand_frames', 'frame_value']

# Functional group macro holding each attribute the reader needs.
FUNCTIONAL_GROUP = {
    'ImagePositionPatient': 'PlanePositionSequence',
    'ImageOrientationPatient': 'PlaneOrientationSequence',
    'PixelSpacing': 'PixelMeasuresSequence',
    'SliceThickness': 'PixelMeasuresSequence',
    'SpacingBetweenSlices': 'PixelMeasuresSequence',
    'RescaleSlope': 'PixelValueTransformationSequence',
    'RescaleIntercept': 'PixelValueTransformationSequence',
    'InStackPositionNumber': 'FrameContentSequence',
}


@dataclass
class DicomFrame:
    """One slice of a DICOM series: a single-frame file or a frame of one.

    Attributes:
        file: the path it is read from.
        ds: the file's dataset (pixel data deferred).
        frame: 0-based frame number in a multi-frame file, ``None`` for a
            single-frame file.
        position: ImagePositionPatient (3,) mm, or ``None``.
        orientation: ImageOrientationPatient (6,), or ``None``.
        pixel_spacing: (row, column) mm, or ``None``.
        rescale: (slope, intercept) of a multi-frame file's frame;
            ``None`` for a single-frame file (its modality LUT applies).
        thickness: SpacingBetweenSlices or SliceThickness, mm, or ``None``.
        order_key: fallback ordering without positions (InstanceNumber,
            frame or InStackPositionNumber).
    """

    file: str
    ds: object
    frame: int | None
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    rescale: tuple[float, float] | None
    thickness: float | None
    order_key: tuple[float, float] | None

    @property
    def sop_instance_uid(self) -> str | None:
        uid = get(self.ds, 'SOPInstanceUID')
        return str(uid) if uid is not None else None

    @property
    def normal(self) -> np.ndarray | None:
        """Unit normal of the image plane (row x column direction)."""
        if self.orientation is None:
            return None
        normal = np.cross(self.orientation[:3], self.orientation[3:])
        norm = np.linalg.norm(normal)
        return normal / norm if norm > 0 else None


def frame_value(ds, keyword: str, frame: int | None, top_level: bool = True):
    """``keyword`` of one frame: per-frame group, shared group, top level
    (unless ``top_level`` is false)."""
    group = FUNCTIONAL_GROUP.get(keyword)
    if frame is not None and group is not None:
        for seq_name, index in (('PerFrameFunctionalGroupsSequence', frame),
                                ('SharedFunctionalGroupsSequence', 0)):
            seq = ds.get(seq_name)
            if seq is None or len(seq) <= index:
                continue
            items = seq[index].get(group)
            if items is not None and len(items) and get(items[0], keyword) is not None:
                return get(items[0], keyword)
    return get(ds, keyword) if top_level else None


def _floats(value, n: int) -> np.ndarray | None:
    if value is None:
        return None
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) else None


def _frame(f: str, ds, frame: int | None, n_frames: int = 1) -> DicomFrame:
    ps = _floats(frame_value(ds, 'PixelSpacing', frame), 2)
    thickness = (frame_value(ds, 'SpacingBetweenSlices', frame)
                 or frame_value(ds, 'SliceThickness', frame))
    rescale = None
    if frame is not None:
        slope = frame_value(ds, 'RescaleSlope', frame)
        intercept = frame_value(ds, 'RescaleIntercept', frame)
        rescale = (float(slope) if slope is not None else 1.0,
                   float(intercept) if intercept is not None else 0.0)
    instance = get(ds, 'InstanceNumber')
    stack_pos = frame_value(ds, 'InStackPositionNumber', frame) if frame is not None else None
    key = None
    if instance is not None or frame is not None:
        key = (float(instance) if instance is not None else 0.0,
               float(stack_pos if stack_pos is not None else (frame or 0)))
    return DicomFrame(
        file=f, ds=ds, frame=frame,
        # A top-level position is the first frame's at most: the frames of a
        # multi-frame file without per-frame positions are ordered by number.
        position=_floats(frame_value(ds, 'ImagePositionPatient', frame,
                                     top_level=n_frames == 1), 3),
        orientation=_floats(frame_value(ds, 'ImageOrientationPatient', frame), 6),
        pixel_spacing=(float(ps[0]), float(ps[1])) if ps is not None else None,
        rescale=rescale,
        thickness=float(thickness) if thickness is not None and float(thickness) > 0 else None,
        order_key=key)


def expand_frames(members: list, series_uid: str, notes: list[str]) -> list[DicomFrame]:
    """Every slice of the series' files: one per single-frame file, one per
    frame of a multi-frame (enhanced) file.

    Args:
        members: (path, dataset) pairs of one series.
        series_uid: for notes.
        notes: recoverable oddities are appended here.
    """
    frames: list[DicomFrame] = []
    multi = 0
    for f, ds in members:
        n = int(get(ds, 'NumberOfFrames') or 1)
        enhanced = 'PerFrameFunctionalGroupsSequence' in ds
        if n == 1 and not enhanced:
            frames.append(_frame(f, ds, None))
            continue
        multi += 1
        per_frame = ds.get('PerFrameFunctionalGroupsSequence')
        if per_frame is not None and len(per_frame) != n:
            note(notes, f'{f}: {len(per_frame)} per-frame functional groups for '
                 f'{n} frames; missing ones fall back to the shared group')
        frames.extend(_frame(f, ds, i, n) for i in range(n))
    if multi and any(fr.position is None for fr in frames if fr.frame is not None):
        note(notes, f'series {series_uid}: multi-frame file(s) without a '
             'position for every frame (PlanePositionSequence)')
    return frames
