"""Loading transforms: the multi-slice CT sample and its lesion annotations."""
from __future__ import annotations

import math

import numpy as np

from a3d_det.datasets.deeplesion import INTERPOLATIONS, load_multislice
from a3d_det.datasets.mask_rle import decode_mask
from a3d_det.datasets.recist import recist_ellipse_mask
from a3d_det.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadMultiSliceFromFile:
    """Load D slices around the key slice in HU (Sec. 3.1: 2 mm resampling).

    Reads ``image_dir``, ``file_name``, ``slice_interval`` (native, mm) and
    ``spacing`` of the data info. Sets ``img`` float32 (H, W, D) in HU
    (slices last), ``img_shape`` and ``ori_shape`` (H, W), ``thickness``
    (native interval in mm; the target interval, or 2.0, when the native one
    is unknown), ``target_interval``.

    Args:
        num_slices: D (odd).
        slice_interval: target interval in mm; ``None`` reads native
            neighbours.
        decode_threads: threads decoding the PNGs of one sample (1: none).
        interpolation: ``'linear'`` (default, correct) or ``'published'``
            (the published loaders' 7-slice offsets, e.g. -7, -2, -2, 0, 2,
            2, 7 mm at 5 mm; see :func:`~a3d_det.datasets.deeplesion.neighbour_offsets`).
        native_if_thicker: native neighbours when the native interval is
            >= ``slice_interval``, resampling only thinner series (the
            published AlignShift input).

    ``interpolation`` and ``native_if_thicker`` are passed as they are to
    :func:`~a3d_det.datasets.deeplesion.sample_neighbours` (``sampling_options``),
    the rule every multi-slice loader shares.
    """

    def __init__(self, num_slices: int = 3, slice_interval: float | None = 2.0,
                 decode_threads: int = 2, interpolation: str = 'linear',
                 native_if_thicker: bool = False) -> None:
        if num_slices < 1 or num_slices % 2 == 0:
            raise ValueError(f'num_slices must be a positive odd number, got {num_slices}')
        if decode_threads < 1:
            raise ValueError(f'decode_threads must be >= 1, got {decode_threads}')
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, '
                             f'got {interpolation!r}')
        self.num_slices = num_slices
        self.slice_interval = slice_interval
        self.decode_threads = decode_threads
        self.interpolation = interpolation
        self.native_if_thicker = bool(native_if_thicker)

    @property
    def sampling_options(self) -> dict:
        """Keyword options of the neighbour rule (``sample_neighbours``)."""
        return dict(interpolation=self.interpolation,
                    native_if_thicker=self.native_if_thicker)

    def __call__(self, results: dict) -> dict:
        native = results.get('slice_interval', math.nan)
        vol = load_multislice(results['image_dir'], results['file_name'], native,
                              self.num_slices, self.slice_interval, self.decode_threads,
                              **self.sampling_options)
        results['img'] = np.ascontiguousarray(vol.transpose(1, 2, 0))
        results['img_shape'] = vol.shape[1:]
        results['ori_shape'] = vol.shape[1:]
        valid = native is not None and math.isfinite(native) and native > 0
        results['thickness'] = float(native) if valid else float(self.slice_interval or 2.0)
        results['target_interval'] = self.slice_interval
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_slices={self.num_slices}, '
                f'slice_interval={self.slice_interval}, '
                f'interpolation={self.interpolation!r}, '
                f'native_if_thicker={self.native_if_thicker})')


@TRANSFORMS.register_module()
class LoadLesionAnnotations:
    """Boxes, labels and masks of the lesions of a key slice.

    Sets ``gt_bboxes`` float32 (M, 4), ``gt_labels`` int64 zeros (0 =
    lesion) and, with ``with_mask``, ``gt_masks`` uint8 (M, H, W): decoded
    from the annotation file's compact masks, or the ellipse through the
    RECIST axes (clipped to the box) when it has none.
    """

    def __init__(self, with_mask: bool = True) -> None:
        self.with_mask = with_mask

    def __call__(self, results: dict) -> dict:
        boxes = np.asarray(results.get('gt_bboxes', np.zeros((0, 4))), np.float32).reshape(-1, 4)
        results['gt_bboxes'] = boxes.copy()
        results['gt_labels'] = np.zeros(len(boxes), dtype=np.int64)
        if not self.with_mask:
            return results
        shape = tuple(results['img'].shape[:2]) if 'img' in results else tuple(results['ori_shape'])
        compact = results.get('gt_masks')
        masks = np.zeros((len(boxes),) + shape, dtype=np.uint8)
        if isinstance(compact, np.ndarray):  # already decoded
            if compact.shape != masks.shape:
                raise ValueError(f'{results.get("file_name")}: masks of shape {compact.shape}, '
                                 f'expected {masks.shape}')
            masks[:] = compact.astype(bool)
        elif compact is not None:
            if len(compact) != len(boxes):
                raise ValueError(f'{results.get("file_name")}: {len(compact)} masks for '
                                 f'{len(boxes)} boxes')
            for i, obj in enumerate(compact):
                try:
                    masks[i] = decode_mask(obj, shape)
                except ValueError as e:
                    raise ValueError(f'{results.get("file_name")}: mask {i}: {e}') from None
        else:
            recists = np.asarray(results.get('recists', np.full((len(boxes), 8), np.nan)),
                                 np.float32).reshape(-1, 8)
            for i, (box, rec) in enumerate(zip(boxes, recists)):
                masks[i] = recist_ellipse_mask(rec, shape, box)
        results['gt_masks'] = masks
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(with_mask={self.with_mask})'
