"""Lesion groups of the FROC breakdowns: slice interval, lesion size, lesion type.

DeepLesion's analyses report sensitivity per lesion type, per lesion size
(RECIST long axis < 10 mm, 10-30 mm, >= 30 mm) and, in the 3D-context papers,
per slice interval (thin <= 2 mm vs thick slices, mostly 5 mm). A group is a
boolean mask over the lesions of every image; the FROC core counts only the
masked lesions and keeps all predictions (see :mod:`a3d_det.evaluation.froc`).

Each image record needs ``gt_bboxes`` (M, 4) and, per breakdown,
``slice_interval`` (float, mm), ``gt_diameters_mm`` (M,) or
``gt_lesion_types`` (M,) (DeepLesion's ``Coarse_lesion_type``, 1-8, -1 when
unknown; unknown lesions belong to no type group).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: The breakdowns ``DeepLesionFROCMetric`` and ``eval_froc.py --by`` accept.
BREAKDOWNS: tuple[str, ...] = ('slice_interval', 'size', 'type')
#: DeepLesion ``Coarse_lesion_type`` codes.
LESION_TYPES: dict[int, str] = {
    1: 'bone', 2: 'abdomen', 3: 'mediastinum', 4: 'liver', 5: 'lung',
    6: 'kidney', 7: 'soft_tissue', 8: 'pelvis'}
#: Slice interval of thin-slice series, mm (inclusive).
THIN_SLICE_MM = 2.0
#: Lesion size bins by RECIST long axis, mm: [lo, hi).
SIZE_BINS_MM: dict[str, tuple[float, float]] = {
    'size<10mm': (0.0, 10.0), 'size10-30mm': (10.0, 30.0),
    'size>=30mm': (30.0, np.inf)}


def _field(image: Mapping, key: str, index: int, num_gt: int) -> np.ndarray:
    value = image.get(key)
    if value is None:
        raise ValueError(f'image {index} ({image.get("file_name", "?")}) has '
                         f'no {key!r}, needed for this breakdown')
    value = np.asarray(value, dtype=np.float64).reshape(-1)
    if len(value) != num_gt:
        raise ValueError(f'image {index} ({image.get("file_name", "?")}): '
                         f'{key!r} has {len(value)} values for {num_gt} '
                         'lesions')
    return value


def lesion_groups(by: str, images: Sequence[Mapping]
                  ) -> dict[str, list[np.ndarray]]:
    """Group masks of one breakdown.

    Args:
        by: ``'slice_interval'``, ``'size'`` or ``'type'``.
        images: image records (see the module docstring).

    Returns:
        An ordered dict: group name (``interval<=2mm``, ``size<10mm``,
        ``type=lung`` ...) to one (M_i,) bool array per image. Every group of
        the breakdown is present, possibly with no lesion.
    """
    if by not in BREAKDOWNS:
        raise ValueError(f'breakdown must be one of {BREAKDOWNS}, got {by!r}')
    num_gts = [len(np.asarray(im['gt_bboxes']).reshape(-1, 4)) for im in images]
    if by == 'slice_interval':
        thin = []
        for i, (im, m) in enumerate(zip(images, num_gts)):
            interval = _field(im, 'slice_interval', i, 1)[0]
            thin.append(np.full(m, interval <= THIN_SLICE_MM))
        return {f'interval<={THIN_SLICE_MM:g}mm': thin,
                f'interval>{THIN_SLICE_MM:g}mm': [~t for t in thin]}
    if by == 'size':
        diam = [_field(im, 'gt_diameters_mm', i, m)
                for i, (im, m) in enumerate(zip(images, num_gts))]
        return {name: [(d >= lo) & (d < hi) for d in diam]
                for name, (lo, hi) in SIZE_BINS_MM.items()}
    types = [_field(im, 'gt_lesion_types', i, m)
             for i, (im, m) in enumerate(zip(images, num_gts))]
    return {f'type={name}': [t == code for t in types]
            for code, name in LESION_TYPES.items()}
