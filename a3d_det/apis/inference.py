"""Inference on a CT volume in memory: ``init_detector`` and ``inference_detector``.

Each key slice's input is built by the config's own test pipeline with its
first transform, the file loader, swapped for ``LoadMultiSliceFromArray``
(mmdet's ``LoadImageFromNDArray`` pattern) and the test dataset's settings
filled in by the dataset's own rule (``fill_pipeline``): the D slices around
the key slice resampled to the config's slice interval (2 mm, Sec. 3.1 of the
paper), windowing, resize, pad, pack; then the model's data preprocessor and
``predict``. Test and inference therefore cannot drift apart. Boxes and
masks come back in the volume's original pixels.
"""
from __future__ import annotations

import copy
import os.path as osp
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from torch import nn

from a3d_det.datasets.deeplesion_dataset import DeepLesionDataset, fill_pipeline
from a3d_det.datasets.transforms import LoadMultiSliceFromArray, MultiSliceLoading
import a3d_det.engine  # noqa: F401  (allowlists the checkpoint classes)
from a3d_det.registry import DATASETS, MODELS, TRANSFORMS

__all__ = ['init_detector', 'inference_detector', 'load_detector_checkpoint',
           'build_test_pipeline']


def _resolve_device(device: str | torch.device) -> torch.device:
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {device} requested but CUDA is not available '
                         'on this machine; use device="cpu"')
    return device


def load_detector_checkpoint(model: nn.Module, checkpoint: str) -> dict:
    """Load a checkpoint's weights into ``model`` with ``weights_only=True``.

    Accepts the project's own checkpoints (``state_dict`` plus ``meta``,
    ``message_hub``, optimizer state: the classes they need are allowlisted
    by ``a3d_det.engine``) and bare state dicts. A ``module.`` prefix (DDP)
    is stripped.

    Args:
        model: the detector built from the matching config.
        checkpoint: path of a ``.pth`` file.

    Returns:
        The checkpoint's ``meta`` (empty when it has none).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a PyTorch checkpoint, or its weights do
            not match the model (missing or unexpected keys, other shapes).
    """
    # a3d_det.engine (imported above) allowlists the checkpoint classes.
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    try:
        ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except Exception as e:  # pickle, zip or weights_only errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f'{checkpoint}: cannot be loaded as a PyTorch checkpoint '
                         f'with weights_only=True ({msg})') from None
    if not isinstance(ckpt, dict):
        raise ValueError(f'{checkpoint}: expected a dict checkpoint, got {type(ckpt).__name__}')
    state = ckpt.get('state_dict', ckpt)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'{checkpoint}: no state_dict of tensors in the checkpoint')
    state = {(k[len('module.'):] if k.startswith('module.') else k): v
             for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        parts = []
        for what, keys in (('missing', missing), ('unexpected', unexpected),
                           ('shape mismatch', wrong)):
            if keys:
                parts.append(f'{len(keys)} {what} (e.g. {keys[0]})')
        raise ValueError(f'{checkpoint} does not match the config\'s model: '
                         + ', '.join(parts))
    model.load_state_dict(state, strict=True)
    return dict(ckpt.get('meta') or {})


def init_detector(config: str | Config,
                  checkpoint: str | None = None,
                  device: str | torch.device = 'cpu',
                  cfg_options: dict | None = None) -> nn.Module:
    """Build a detector from a config and load its checkpoint.

    Args:
        config: a config file path or an ``mmengine.Config``.
        checkpoint: a ``.pth`` path, or ``None`` to keep the initial weights.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...
        cfg_options: overrides merged into the config.

    Returns:
        The model in eval mode on ``device``, with the config as ``model.cfg``.
    """
    if isinstance(config, (str, bytes)) or hasattr(config, '__fspath__'):
        path = str(config)
        if not osp.isfile(path):
            raise FileNotFoundError(f'config file not found: {path}')
        config = Config.fromfile(path)
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    else:
        raise TypeError(f'config must be a path or a Config, got {type(config).__name__}')
    if cfg_options:
        config.merge_from_dict(cfg_options)
    if 'model' not in config:
        raise ValueError('the config has no "model"')
    device = _resolve_device(device)
    init_default_scope(config.get('default_scope', 'a3d_det'))
    model = MODELS.build(config.model)
    if checkpoint is not None:
        load_detector_checkpoint(model, checkpoint)
    model.cfg = config
    if hasattr(model, 'with_mask_in_val'):
        model.with_mask_in_val = True  # inference (test_step) keeps the masks
    model.to(device)
    model.eval()
    return model


def _test_dataset_cfg(cfg: Config) -> dict:
    if cfg.get('test_dataloader') is not None and 'dataset' in cfg.test_dataloader:
        return cfg.test_dataloader.dataset
    if cfg.get('test_pipeline') is not None:
        return dict(pipeline=cfg.test_pipeline)
    raise ValueError('the config has neither test_dataloader.dataset.pipeline '
                     'nor test_pipeline')


def build_test_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline for a volume in memory.

    The test dataset's pipeline with its first transform (the multi-slice
    file loader) swapped for :class:`LoadMultiSliceFromArray` with the same
    arguments, and the dataset's ``num_slices`` / ``slice_interval`` /
    ``window`` filled in as the dataset itself fills them
    (:meth:`DeepLesionDataset.pipeline_settings`, :func:`fill_pipeline`).
    It takes ``volume`` (N, H, W) HU, ``key_index``, ``slice_interval`` and
    ``spacing`` (see :func:`inference_detector`).

    Raises:
        ValueError: the test pipeline does not start with a multi-slice loader.
    """
    init_default_scope(cfg.get('default_scope', 'a3d_det'))
    dataset = _test_dataset_cfg(cfg)
    steps = [copy.deepcopy(dict(t)) for t in dataset.get('pipeline', [])]
    first = steps[0].get('type') if steps else None
    first_cls = TRANSFORMS.get(first) if isinstance(first, str) else first
    if not (isinstance(first_cls, type) and issubclass(first_cls, MultiSliceLoading)):
        raise ValueError('the test pipeline must start with a multi-slice loader '
                         f'(LoadMultiSliceFromFile), got {first!r}')
    steps[0]['type'] = LoadMultiSliceFromArray
    ds_type = dataset.get('type', DeepLesionDataset)
    ds_cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
    if not (isinstance(ds_cls, type) and issubclass(ds_cls, DeepLesionDataset)):
        ds_cls = DeepLesionDataset
    settings = ds_cls.pipeline_settings(dataset)
    return Compose([TRANSFORMS.build(t) for t in fill_pipeline(steps, **settings)])


def inference_detector(model: nn.Module,
                       volume_hu: np.ndarray,
                       spacing: float | None,
                       slice_interval: float,
                       key_slices: Sequence[int] | None = None,
                       batch_size: int = 1) -> list[dict[str, object]]:
    """Detect lesions on key slices of a CT volume.

    Args:
        model: from :func:`init_detector` (its ``cfg`` gives the pipeline).
        volume_hu: (N, H, W) Hounsfield units, slices ordered along the body
            axis (e.g. ``CTSeries.volume``).
        spacing: in-plane pixel spacing in mm/px (``None`` when unknown).
        slice_interval: distance between neighbouring slices, mm.
        key_slices: indices of the slices to detect on (default: all).
        batch_size: key slices per forward pass.

    Returns:
        One dict per key slice, in the order of ``key_slices``: ``index``,
        ``boxes`` (K, 4) float32 x1y1x2y2 in original pixels, ``scores``
        (K,) float32, ``masks`` (K, H, W) bool.
        The masks take K * H * W bytes per slice (up to 50 detections at
        the official settings): for a long series, call this on a few key
        slices at a time and keep what you need (``tools/infer.py`` does).
    """
    volume_hu = np.asarray(volume_hu)
    if volume_hu.ndim != 3 or min(volume_hu.shape) < 1:
        raise ValueError(f'volume_hu must be (N, H, W), got shape {volume_hu.shape}')
    n = volume_hu.shape[0]
    key_slices = list(range(n)) if key_slices is None else [int(i) for i in key_slices]
    bad = [i for i in key_slices if not 0 <= i < n]
    if bad:
        raise ValueError(f'key slices {bad} are outside the volume (0..{n - 1})')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if not (0 < float(slice_interval) < float('inf')):
        raise ValueError(f'slice_interval must be a positive number of mm, got {slice_interval}')
    pipeline = build_test_pipeline(model.cfg)
    spacing = float(spacing) if spacing is not None else float('nan')

    outputs: list[dict[str, object]] = []
    for start in range(0, len(key_slices), batch_size):
        inputs, samples = [], []
        batch_keys = key_slices[start:start + batch_size]
        for index in batch_keys:
            packed = pipeline(dict(
                volume=volume_hu, key_index=index, slice_interval=float(slice_interval),
                spacing=spacing, file_name=f'slice_{index:04d}', img_path=None,
                image_dir=None))
            inputs.append(packed['inputs'])
            samples.append(packed['data_samples'])
        with torch.inference_mode():
            preds = model.test_step(dict(inputs=inputs, data_samples=samples))
        for index, sample in zip(batch_keys, preds):
            pred = sample.pred_instances
            h, w = volume_hu.shape[1:]
            masks = (pred.masks.cpu().numpy().astype(bool) if 'masks' in pred
                     else np.zeros((len(pred.scores), h, w), dtype=bool))
            outputs.append(dict(
                index=index,
                boxes=pred.bboxes.detach().cpu().numpy().astype(np.float32).reshape(-1, 4),
                scores=pred.scores.detach().cpu().numpy().astype(np.float32).reshape(-1),
                masks=masks))
    return outputs

