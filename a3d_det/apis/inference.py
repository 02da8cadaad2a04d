"""Inference on a CT volume in memory: ``init_detector`` and ``inference_detector``.

Each key slice's input is built exactly as at training time: the D slices
around it resampled to the config's slice interval (2 mm, Sec. 3.1 of the
paper) by ``a3d_det.datasets.deeplesion.sample_neighbours``, then the rest of
the config's test pipeline (windowing, resize, pad, pack) with the load
transforms skipped, then the model's data preprocessor and ``predict``.
Boxes and masks come back in the volume's original pixels.
"""
from __future__ import annotations

import copy
import inspect
import os.path as osp
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from torch import nn

import a3d_det.engine  # noqa: F401  (allowlists the checkpoint classes)
from a3d_det.registry import DATASETS, MODELS

__all__ = ['init_detector', 'inference_detector', 'load_detector_checkpoint',
           'build_test_pipeline']

# The transforms that read from disk; in-memory inference provides their output.
LOAD_TRANSFORMS = ('LoadMultiSliceFromFile', 'LoadLesionAnnotations')


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


def _init_default(cls: type | None, name: str, fallback):
    """Default of ``name`` in ``cls.__init__`` (searched along the MRO)."""
    for klass in (cls.__mro__ if cls is not None else ()):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    return fallback


def build_test_pipeline(cfg: Config, num_slices: int | None = None):
    """The config's test pipeline without its load transforms.

    The test dataset fills ``num_slices``, ``slice_interval`` and ``window``
    into ``LoadMultiSliceFromFile`` and ``WindowCT`` when they leave them
    unset (``DeepLesionDataset``); the same values are resolved here from the
    dataset config (or the dataset class's defaults), so inference sees the
    input the test loop would.

    Args:
        cfg: the detector's config.
        num_slices: fallback D when neither the pipeline nor the dataset sets it.

    Returns:
        (pipeline, num_slices, target_interval): the composed in-memory
        pipeline, D and the slice interval (mm) the neighbours are resampled
        to (``None``: native neighbours).
    """
    from a3d_det.datasets.deeplesion import DEFAULT_WINDOW

    init_default_scope(cfg.get('default_scope', 'a3d_det'))
    dataset = _test_dataset_cfg(cfg)
    ds_type = dataset.get('type')
    ds_cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type

    def dataset_value(name: str, fallback):
        return dataset[name] if name in dataset else _init_default(ds_cls, name, fallback)

    steps = [copy.deepcopy(dict(t)) for t in dataset.get('pipeline', [])]
    load = next((t for t in steps if t['type'] == 'LoadMultiSliceFromFile'), {})
    d = load.get('num_slices', dataset_value('num_slices', num_slices))
    if d is None:
        raise ValueError('cannot tell the number of slices from the config')
    target = load.get('slice_interval', dataset_value('slice_interval', 2.0))
    for t in steps:
        if t['type'] == 'WindowCT':
            t.setdefault('window', tuple(dataset_value('window', DEFAULT_WINDOW)))
    pipeline = Compose([t for t in steps if t['type'] not in LOAD_TRANSFORMS])
    return pipeline, int(d), target


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
    from a3d_det.datasets.deeplesion import sample_neighbours

    pipeline, num_slices, target_interval = build_test_pipeline(
        model.cfg, num_slices=getattr(getattr(model, 'backbone', None), 'num_slices', None))

    def read_slice(i: int) -> np.ndarray | None:
        return volume_hu[i].astype(np.float32, copy=False) if 0 <= i < n else None

    outputs: list[dict[str, object]] = []
    for start in range(0, len(key_slices), batch_size):
        inputs, samples = [], []
        batch_keys = key_slices[start:start + batch_size]
        for index in batch_keys:
            # Sec. 3.1: D slices at target_interval around the key slice.
            stack = sample_neighbours(read_slice, index, slice_interval,
                                      num_slices, target_interval)   # (D, H, W)
            results = _results(stack, index, spacing, slice_interval,
                               target_interval)
            packed = pipeline(results)
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


def _results(stack: np.ndarray, index: int, spacing: float | None,
             slice_interval: float, target_interval: float | None) -> dict:
    """What the load transforms would give the rest of the test pipeline."""
    img = np.ascontiguousarray(stack.transpose(1, 2, 0))  # (H, W, D), HU
    h, w = img.shape[:2]
    return dict(
        img=img,
        img_shape=(h, w),
        ori_shape=(h, w),
        spacing=float(spacing) if spacing is not None else float('nan'),
        slice_interval=float(slice_interval),
        thickness=float(slice_interval),
        target_interval=target_interval,
        file_name=f'slice_{index:04d}',
        img_path=None,
        image_dir=None,
        gt_bboxes=np.zeros((0, 4), dtype=np.float32),
        gt_labels=np.zeros((0,), dtype=np.int64),
        ori_gt_bboxes=np.zeros((0, 4), dtype=np.float32),
        gt_lesion_types=np.zeros((0,), dtype=np.int64),
        gt_diameters_mm=np.zeros((0,), dtype=np.float32),
    )
