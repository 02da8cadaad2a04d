"""Loading transforms: the multi-slice CT sample and its lesion annotations."""
from __future__ import annotations

import math

import numpy as np

from a3d_det.datasets.deeplesion import INTERPOLATIONS, load_multislice, sample_neighbours
from a3d_det.datasets.mask_rle import decode_mask
from a3d_det.datasets.recist import recist_ellipse_mask
from a3d_det.registry import TRANSFORMS


class MultiSliceLoading:
    """The options and the output of the multi-slice loaders (Sec. 3.1: 2 mm
    resampling), shared by :class:`LoadMultiSliceFromFile` (DeepLesion PNGs)
    and :class:`LoadMultiSliceFromArray` (a volume in memory), so that both
    take the same keyword arguments and apply the same neighbour rule
    (:func:`~a3d_det.datasets.deeplesion.sample_neighbours`).

    Sets ``img`` float32 (H, W, D) in HU (slices last), ``img_shape`` and
    ``ori_shape`` (H, W), ``thickness`` (kept when the results have it, else
    the native interval; the target interval, or 2.0, when the native one is
    unknown) and ``target_interval``. Reads ``slice_interval`` (native, mm;
    NaN when unknown) from the results.

    Args:
        num_slices: D (odd).
        slice_interval: target interval in mm; ``None`` reads native
            neighbours.
        decode_threads: threads decoding the PNGs of one sample (1: none);
            the array loader has nothing to decode.
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

    def neighbour_options(self) -> dict:
        """Keyword arguments of ``sample_neighbours`` / ``load_multislice``
        after the reader, the key slice and the native interval."""
        return dict(num_slices=self.num_slices, target_interval=self.slice_interval,
                    **self.sampling_options)

    def load(self, results: dict, native: float) -> np.ndarray:
        """(D, H, W) float32 HU around the key slice of ``results``."""
        raise NotImplementedError

    def __call__(self, results: dict) -> dict:
        native = results.get('slice_interval', math.nan)
        vol = self.load(results, native)
        results['img'] = np.ascontiguousarray(vol.transpose(1, 2, 0))
        results['img_shape'] = vol.shape[1:]
        results['ori_shape'] = vol.shape[1:]
        if results.get('thickness') is None:
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
class LoadMultiSliceFromFile(MultiSliceLoading):
    """Load D slices around the key slice from DeepLesion PNGs, in HU.

    Reads ``image_dir``, ``file_name`` (``PPPPPP_SS_RR/NNN.png``) and
    ``slice_interval`` of the data info; a neighbour missing from the folder
    falls back towards the key slice. Arguments and output: see
    :class:`MultiSliceLoading`.

    Raises:
        SliceReadError: a slice it needs cannot be read (naming the file).
    """

    def load(self, results: dict, native: float) -> np.ndarray:
        return load_multislice(results['image_dir'], results['file_name'], native,
                               threads=self.decode_threads, **self.neighbour_options())


@TRANSFORMS.register_module()
class LoadMultiSliceFromArray(MultiSliceLoading):
    """Load D slices around a key slice of a volume in memory, in HU.

    The in-memory twin of :class:`LoadMultiSliceFromFile` (mmdet's
    ``LoadImageFromNDArray`` pattern): in-memory inference runs the config's
    own test pipeline with this transform in place of the file loader, same
    arguments, so test and inference build the same input.

    Reads ``volume`` ((N, H, W) HU, slices ordered along the body axis),
    ``key_index`` (0-based) and ``slice_interval`` (native, mm) from the
    results; ``thickness`` when given (else the native interval). Slices
    beyond the volume fall back towards the key slice, as slices missing
    from a DeepLesion folder do. Arguments and output: see
    :class:`MultiSliceLoading`.
    """

    def load(self, results: dict, native: float) -> np.ndarray:
        volume = results['volume']
        if getattr(volume, 'ndim', 0) != 3:
            raise ValueError(f'volume must be (N, H, W), got shape {np.shape(volume)}')
        n, key = len(volume), int(results['key_index'])
        if not 0 <= key < n:
            raise ValueError(f'key_index {key} is outside the volume (0..{n - 1})')

        def read(i: int) -> np.ndarray | None:
            return np.asarray(volume[i], dtype=np.float32) if 0 <= i < n else None

        return sample_neighbours(read, key, native, **self.neighbour_options())


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
