"""``DeepLesionDataset``: one item per annotated key slice of DeepLesion."""
from __future__ import annotations

import copy
import logging
import math
import os.path as osp
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from collections.abc import Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from a3d_det.datasets.deeplesion import DEFAULT_WINDOW, SliceReadError
from a3d_det.datasets.dl_info import SPLITS, iter_dl_info
from a3d_det.datasets.skipped_samples import (DEFAULT_MAX_SKIPPED_FRACTION, SKIPPED_KEY,
                                              check_fraction, check_skipped)
from a3d_det.datasets.transforms import MultiSliceLoading, WindowCT
from a3d_det.registry import DATASETS, TRANSFORMS


def records_to_images(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group DL_info lesion records (from :func:`iter_dl_info`) by key image.

    Returns:
        JSON-serialisable raw image dicts (the ``data_list`` entries of a
        prepared annotation file, without masks): ``file_name``, ``split``,
        ``patient``, ``study``, ``series``, ``key_index``, ``spacing`` (mm/px),
        ``slice_interval`` (mm, may be NaN), ``ori_shape`` [H, W],
        ``slice_range``, ``dicom_window`` and per lesion ``gt_bboxes``,
        ``recists`` (0-based), ``lesion_types``, ``diameters_mm``, ``noisy``.
    """
    images: OrderedDict[str, dict] = OrderedDict()
    for rec in records:
        img = images.get(rec['file_name'])
        if img is None:
            img = images[rec['file_name']] = dict(
                file_name=rec['file_name'], split=rec['split'],
                patient=rec['patient'], study=rec['study'], series=rec['series'],
                key_index=rec['key_index'], spacing=rec['spacing'][0],
                slice_interval=rec['spacing'][2], ori_shape=list(rec['image_size']),
                slice_range=list(rec['slice_range']),
                dicom_window=list(rec['dicom_window']),
                gt_bboxes=[], recists=[], lesion_types=[], diameters_mm=[], noisy=[])
        img['gt_bboxes'].append([float(v) for v in rec['bbox']])
        img['recists'].append([float(v) for v in rec['recist']])
        img['lesion_types'].append(int(rec['lesion_type']))
        img['diameters_mm'].append(float(rec['diameters_px'][0]) * rec['spacing'][0])
        img['noisy'].append(bool(rec['noisy']))
    return list(images.values())


#: What a ``DeepLesionDataset`` fills into its multi-slice loader and
#: ``WindowCT`` when neither the dataset config nor the transform sets it.
PIPELINE_DEFAULTS: dict[str, Any] = dict(num_slices=3, slice_interval=2.0,
                                         interpolation='linear', native_if_thicker=False,
                                         window=tuple(DEFAULT_WINDOW))


def _transform_class(transform: dict) -> type | None:
    kind = transform.get('type')
    return TRANSFORMS.get(kind) if isinstance(kind, str) else kind


def fill_pipeline(pipeline: Sequence[dict | Any], window: Sequence[float],
                  **loading: Any) -> list[dict | Any]:
    """Give a dataset's loading settings (``num_slices``, ``slice_interval``,
    ``interpolation``, ``native_if_thicker``) to the multi-slice loader
    configs (file or array) of a pipeline and its ``window`` to ``WindowCT``
    configs, where they leave them unset. The one place these are filled
    in: the dataset and in-memory inference both call it.

    Returns:
        A copy of ``pipeline`` (built transforms pass through unchanged).

    Raises:
        ValueError: a transform sets one of them to another value.
    """
    window = tuple(float(v) for v in window)
    out = []
    for transform in pipeline:
        if not isinstance(transform, dict):
            out.append(transform)
            continue
        t = copy.deepcopy(dict(transform))
        cls = _transform_class(t)
        if isinstance(cls, type) and issubclass(cls, MultiSliceLoading):
            for key, val in loading.items():
                if key in t and t[key] != val:
                    raise ValueError(
                        f'{cls.__name__}({key}={t[key]!r}) disagrees with the '
                        f'dataset\'s {key}={val!r}; set it in one place only')
                t[key] = val
        elif isinstance(cls, type) and issubclass(cls, WindowCT):
            if 'window' in t and tuple(t['window']) != window:
                raise ValueError(f'WindowCT(window={tuple(t["window"])}) disagrees with '
                                 f'the dataset\'s window={window}; set it in one place only')
            t['window'] = window
        out.append(t)
    return out


@DATASETS.register_module()
class DeepLesionDataset(BaseDataset):
    """DeepLesion (NIH), one item per key slice (paper Sec. 3.1).

    Args:
        data_root: folder holding ``Images_png/`` and the annotation file.
        ann_file: ``DL_info.csv`` or a prepared annotation file (JSON with
            ``metainfo`` and ``data_list``, written by
            ``tools/dataset_converters/prepare_deeplesion.py``; it adds masks).
        split: ``'train'`` | ``'val'`` | ``'test'`` (Train_Val_Test 1 | 2 | 3),
            or ``None`` for all.
        num_slices: D, filled into the multi-slice loader of the pipeline
            (``LoadMultiSliceFromFile`` or ``LoadMultiSliceFromArray``) when
            it does not set it (:func:`fill_pipeline`).
        slice_interval: target slice interval (mm), filled in likewise;
            ``None`` reads native neighbours.
        interpolation: ``'linear'`` or ``'published'`` (the published
            loaders' 7-slice offsets), filled in likewise.
        native_if_thicker: native neighbours at slice intervals >=
            ``slice_interval`` (the published AlignShift input), filled in
            likewise.
        window: HU window, filled into ``WindowCT`` likewise.
        image_dir: the slice folder, relative to ``data_root``.
        filter_noisy: drop lesions marked Possibly_noisy (and images left
            with none).
        max_skipped_fraction: in training (``test_mode=False``), a sample
            whose slices cannot be read (:class:`SliceReadError`) is skipped
            with a warning naming the file and another is drawn; more than
            this fraction of the samples skipped raises
            :class:`SkippedSamplesError` listing them. The samples skipped
            while fetching an item travel in its data sample's metainfo
            (``skipped_samples``) to ``SkippedSamplesHook``, which counts
            them over all loader workers and logs the count. In test mode an
            unreadable image is an error.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``test_mode``, ``indices``, ``lazy_init``, ...).

    ``get_data_info(i)`` holds ``img_path``, ``image_dir``, ``file_name``,
    ``gt_bboxes`` float32 (M, 4) 0-based x1y1x2y2, ``recists`` float32 (M, 8)
    0-based, ``spacing``, ``slice_interval``, ``lesion_types`` int64 (M,),
    ``diameters_mm`` float32 (M,), ``ori_shape`` (H, W), ``ori_gt_bboxes``,
    ``gt_lesion_types``, ``gt_diameters_mm`` (copies kept for the metric) and
    ``gt_masks`` (M compact masks) when the annotation file has them.
    """

    METAINFO = dict(classes=('lesion',))
    PIPELINE_DEFAULTS = PIPELINE_DEFAULTS

    @classmethod
    def pipeline_settings(cls, dataset_cfg: Mapping[str, Any]) -> dict[str, Any]:
        """The loading settings (``num_slices``, ``slice_interval``,
        ``interpolation``, ``native_if_thicker``) and ``window`` a dataset built
        from ``dataset_cfg`` fills into its pipeline (the config's values, else
        the class's defaults); in-memory inference reads them here."""
        return {k: dataset_cfg.get(k, v) for k, v in cls.PIPELINE_DEFAULTS.items()}

    def __init__(self,
                 data_root: str = 'data/DeepLesion',
                 ann_file: str = 'DL_info.csv',
                 split: str | None = 'train',
                 num_slices: int = PIPELINE_DEFAULTS['num_slices'],
                 slice_interval: float | None = PIPELINE_DEFAULTS['slice_interval'],
                 interpolation: str = PIPELINE_DEFAULTS['interpolation'],
                 native_if_thicker: bool = PIPELINE_DEFAULTS['native_if_thicker'],
                 window: Sequence[float] = PIPELINE_DEFAULTS['window'],
                 image_dir: str = 'Images_png',
                 filter_noisy: bool = True,
                 max_skipped_fraction: float = DEFAULT_MAX_SKIPPED_FRACTION,
                 pipeline: Sequence[dict | Any] = (),
                 **kwargs) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f'split must be one of {sorted(SPLITS)} or None, got {split!r}')
        if num_slices < 1 or num_slices % 2 == 0:
            raise ValueError(f'num_slices must be a positive odd number, got {num_slices}')
        self.split = split
        self.num_slices = num_slices
        self.slice_interval = slice_interval
        self.interpolation = interpolation
        self.native_if_thicker = native_if_thicker
        self.window = tuple(window)
        self.image_dir = osp.join(data_root, image_dir) if data_root else image_dir
        self.filter_noisy = filter_noisy
        self.max_skipped_fraction = check_fraction(max_skipped_fraction)
        # {file_name: reason} skipped in this process; those of the current item.
        self.skipped: dict[str, str] = {}
        self._pending: dict[str, str] = {}
        # Built here with a3d_det's registry, so the dataset works without
        # default_scope (mmengine's Compose would look in its root registry).
        filled = fill_pipeline(pipeline, window=self.window, num_slices=num_slices,
                               slice_interval=slice_interval, interpolation=interpolation,
                               native_if_thicker=native_if_thicker)
        pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in filled]
        super().__init__(ann_file=ann_file, data_root=data_root, pipeline=pipeline, **kwargs)

    def prepare_data(self, idx: int) -> Any:
        """The pipeline's output for item ``idx``; in training ``None`` (skip,
        mmengine's refetch draws another) when its slices cannot be read."""
        try:
            return super().prepare_data(idx)
        except SliceReadError as err:
            if self.test_mode:
                raise
            reason = str(err)
        name = self.get_data_info(idx)['file_name']
        self.skipped[name] = self._pending[name] = reason
        print_log(f'{reason}; skipping training sample {name} and drawing another',
                  logger='current', level=logging.WARNING)
        # This process's count is a lower bound of the run's.
        check_skipped(self.skipped, len(self), self.max_skipped_fraction)
        return None

    def __getitem__(self, idx: int) -> Any:
        self._pending = {}
        data = super().__getitem__(idx)
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if self._pending and isinstance(sample, BaseDataElement):
            sample.set_metainfo({SKIPPED_KEY: dict(self._pending)})
        self._pending = {}
        return data

    def _serialize_data(self) -> tuple[np.ndarray, np.ndarray]:
        # mmengine cannot serialise an empty list (np.concatenate of nothing);
        # a split can be empty in a small tree.
        if not self.data_list:
            return np.zeros(0, np.uint8), np.zeros(0, np.int64)
        return super()._serialize_data()

    def load_data_list(self) -> list[dict]:
        if not osp.isfile(self.ann_file):
            hint = ('' if self.ann_file.lower().endswith('.csv') else
                    ' (prepared annotation files with GrabCut masks are made by '
                    'tools/dataset_converters/prepare_deeplesion.py --data-root '
                    f'{self.data_root or "DATA_ROOT"}; or use ann_file=DL_info.csv)')
            raise FileNotFoundError(f'{self.ann_file}: annotation file not found{hint}')
        if self.ann_file.lower().endswith('.csv'):
            records = [rec for _, rec, _ in iter_dl_info(self.ann_file, strict=True)]
            data_list = []
            for raw in records_to_images(records):
                info = self.parse_data_info(raw)
                if info:
                    data_list.append(info)
            return data_list
        return super().load_data_list()

    def parse_data_info(self, raw_data_info: dict) -> dict | list[dict]:
        """Raw image dict (CSV group or prepared file entry) -> data info;
        ``[]`` (dropped) when it is not in the split or has no lesion left."""
        raw = raw_data_info
        if self.split is not None and int(raw['split']) != SPLITS[self.split]:
            return []
        try:
            boxes = np.asarray(raw['gt_bboxes'], dtype=np.float32).reshape(-1, 4)
            m = len(boxes)
            recists = np.asarray(raw['recists'], dtype=np.float32).reshape(m, 8)
            types = np.asarray(raw['lesion_types'], dtype=np.int64).reshape(m)
            diam = np.asarray(raw['diameters_mm'], dtype=np.float32).reshape(m)
            noisy = np.asarray(raw.get('noisy', [False] * m), dtype=bool).reshape(m)
            masks = raw.get('gt_masks')
            if masks is not None and len(masks) != m:
                raise ValueError(f'{len(masks)} masks for {m} lesions')
        except (KeyError, ValueError) as e:
            raise ValueError(f'{self.ann_file}: bad entry {raw.get("file_name")!r}: {e}') from None
        keep = ~noisy if self.filter_noisy else np.ones(m, dtype=bool)
        if not keep.any():
            return []
        si = raw.get('slice_interval')
        info = dict(
            img_path=osp.join(self.image_dir, raw['file_name']),
            image_dir=self.image_dir,
            file_name=raw['file_name'],
            split=int(raw['split']),
            spacing=float(raw['spacing']),
            slice_interval=float(si) if si is not None else math.nan,
            ori_shape=tuple(int(v) for v in raw['ori_shape']),
            gt_bboxes=boxes[keep],
            recists=recists[keep],
            lesion_types=types[keep],
            diameters_mm=diam[keep],
        )
        info['ori_gt_bboxes'] = info['gt_bboxes'].copy()
        info['gt_lesion_types'] = info['lesion_types'].copy()
        info['gt_diameters_mm'] = info['diameters_mm'].copy()
        if masks is not None:
            info['gt_masks'] = [masks[i] for i in np.flatnonzero(keep)]
        return info
