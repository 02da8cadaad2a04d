"""Slice IO of DeepLesion: 16-bit PNG reading, multi-slice resampling, windowing.

DeepLesion stores each CT slice as ``Images_png/PPPPPP_SS_RR/NNN.png``, a
uint16 PNG with HU = value - 32768. A sample of the detector is ``D`` slices
centred on the annotated key slice, resampled to a common slice interval
(2 mm in the paper, Sec. 3.1: "we normalize the axial thickness of all data
to 2mm") and windowed to [-1024, 2050] HU -> [-50, 205].
"""
from __future__ import annotations

import logging
import math
import os
import os.path as osp
import re
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence

import cv2
import numpy as np

logger = logging.getLogger(__name__)

#: HU = PNG value - HU_OFFSET (DeepLesion's convention).
HU_OFFSET = 32768
#: The paper's HU window (Sec. 3.1).
DEFAULT_WINDOW = (-1024.0, 2050.0)


class SliceReadError(OSError):
    """A slice PNG is missing, unreadable or not a 16-bit single-channel image."""


def split_file_name(file_name: str) -> tuple[str, int]:
    """Split ``PPPPPP_SS_RR/NNN.png`` (or DL_info's ``PPPPPP_SS_RR_NNN.png``)
    into the series folder and the slice number.

    Returns:
        (folder, slice_number), e.g. ``('000001_01_01', 109)``.

    Raises:
        ValueError: the name has neither form.
    """
    name = file_name.replace('\\', '/')
    if '/' in name:
        folder, base = name.rsplit('/', 1)
        ok_folder = bool(folder)
    else:
        folder, _, base = name.rpartition('_')
        ok_folder = re.fullmatch(r'\d+_\d+_\d+', folder) is not None
    stem, ext = osp.splitext(base)
    if not ok_folder or ext.lower() != '.png' or not stem.isdigit():
        raise ValueError(f'bad DeepLesion file name {file_name!r}: expected '
                         'PPPPPP_SS_RR/NNN.png or PPPPPP_SS_RR_NNN.png')
    return folder, int(stem)


def slice_path(image_dir: str, folder: str, index: int) -> str:
    """Path of slice ``index`` of series ``folder`` (``NNN.png``, 3 digits at least)."""
    return osp.join(image_dir, folder, f'{index:03d}.png')


def read_png_hu(path: str) -> np.ndarray:
    """Read one DeepLesion slice as HU.

    Args:
        path: a uint16 PNG (value = HU + 32768).

    Returns:
        float32 (H, W) array in HU.

    Raises:
        SliceReadError: the file is missing, cannot be decoded, or is not a
            single-channel 16-bit image (reading it as 8-bit would silently
            destroy the HU values).
    """
    if not osp.isfile(path):
        raise SliceReadError(f'{path}: slice file not found')
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SliceReadError(f'{path}: cannot decode the image (corrupt or not a PNG)')
    if img.dtype != np.uint16 or img.ndim != 2:
        raise SliceReadError(
            f'{path}: expected a single-channel 16-bit PNG (HU + {HU_OFFSET}), '
            f'got dtype {img.dtype} with shape {img.shape}')
    out = img.astype(np.float32)
    out -= HU_OFFSET
    return out


#: Values of the ``interpolation`` option of the neighbour sampling.
INTERPOLATIONS = ('linear', 'published')


def _valid_interval(slice_interval: float | None) -> float | None:
    """The native interval as a float, or ``None`` when unknown (NaN, <= 0, inf)."""
    si = float(slice_interval) if slice_interval is not None else math.nan
    return si if si > 0 and not math.isinf(si) else None


def neighbour_offsets(slice_interval: float | None, num_slices: int,
                      target_interval: float | None = 2.0, *,
                      interpolation: str = 'linear',
                      native_if_thicker: bool = False) -> list[float]:
    """Offsets (in native slices, relative to the key slice) of the D outputs.

    Output p (p = -(D-1)/2 ... (D-1)/2) lies at p * target_interval mm, i.e.
    at r * p native slices with r = target_interval / slice_interval.
    ``target_interval=None`` reads native neighbours (r = 1). A NaN or
    non-positive native interval gives offsets 0 (the key slice repeated).

    Args:
        slice_interval: native slice interval in mm.
        num_slices: D, odd.
        target_interval: output slice interval in mm, or ``None`` (native).
        interpolation: ``'linear'`` (the correct positions ``r * p``) or
            ``'published'``: the loader of the published DeepLesion code
            (3DCE, MULAN, AlignShift, A3D) computes the interpolation weights
            of the first neighbour, ``frac(r)``, and reuses them for every
            neighbour, so output p lies at ``floor(r * |p|) + frac(r)``
            (``r * |p|`` when that is integral). At 5 mm and 7 slices this
            gives -7, -2, -2, 0, 2, 2, 7 mm instead of -6 ... 6; for 3 slices
            both are the same. A bug, kept as an option for reproducing
            published numbers.
        native_if_thicker: read native neighbours (r = 1) when the native
            interval is at least ``target_interval`` and resample only
            thinner series (the published AlignShift loader; its thickness
            input stays the native interval).

    Returns:
        D offsets in native slices, increasing, 0 in the middle.
    """
    if num_slices < 1 or num_slices % 2 == 0:
        raise ValueError(f'num_slices must be a positive odd number, got {num_slices}')
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}')
    half = (num_slices - 1) // 2
    if target_interval is None:
        ratio = 1.0
    else:
        if not target_interval > 0:
            raise ValueError(f'target_interval must be positive or None, got {target_interval}')
        si = _valid_interval(slice_interval)
        if si is None:
            return [0.0] * num_slices
        ratio = 1.0 if native_if_thicker and si >= target_interval \
            else float(target_interval) / si
    if interpolation == 'linear' or ratio == math.floor(ratio):
        return [ratio * p for p in range(-half, half + 1)]
    frac = ratio - math.floor(ratio)
    right = []
    for p in range(1, half + 1):
        pos = ratio * p
        right.append(pos if pos == math.floor(pos) else math.floor(pos) + frac)
    return [-v for v in reversed(right)] + [0.0] + right


def source_offsets(rel: float) -> list[int]:
    """Native slice offsets an output at ``rel`` slices reads: itself when
    integral, else the slices at ``floor(rel)`` and ``floor(rel) + 1``."""
    near = round(rel)
    if abs(rel - near) < 1e-6:
        return [int(near)]
    lo = math.floor(rel)
    return [lo, lo + 1]


def neighbour_plan(exists: Callable[[int], bool], key_index: int,
                   slice_interval: float | None, num_slices: int,
                   target_interval: float | None = 2.0, *,
                   interpolation: str = 'linear',
                   native_if_thicker: bool = False) -> list[list[tuple[int, float]]]:
    """Which slices each output reads, and with which weights (the one rule
    of :func:`sample_neighbours`, without reading any pixel).

    An output at an integral offset reads that slice; otherwise it is the
    linear interpolation of the slices ``floor`` and ``floor + 1`` of it. A
    slice that does not exist (``exists(i)`` false) falls back one slice at a
    time towards the key slice, which is assumed to exist.

    Returns:
        for each of the D outputs, ``[(slice_index, weight), ...]``.
    """
    def fallback(offset: int) -> int:
        o = offset
        while o != 0 and not exists(key_index + o):
            o += -1 if o > 0 else 1
        if o != offset:
            logger.debug('slice %d missing, fell back to %d', key_index + offset, key_index + o)
        return key_index + o

    plan = []
    for rel in neighbour_offsets(slice_interval, num_slices, target_interval,
                                 interpolation=interpolation,
                                 native_if_thicker=native_if_thicker):
        src = source_offsets(rel)
        if len(src) == 1:
            plan.append([(fallback(src[0]), 1.0)])
        else:
            w = rel - src[0]  # weight of the slice at src[1]
            plan.append([(fallback(src[0]), 1.0 - w), (fallback(src[1]), w)])
    return plan


def combine_plan(plan: list[list[tuple[int, float]]],
                 slices: dict[int, np.ndarray]) -> np.ndarray:
    """Weighted sums of the planned slices -> float32 (D, H, W)."""
    first = slices[plan[len(plan) // 2][0][0]]
    out = np.empty((len(plan),) + first.shape, dtype=np.float32)
    for k, parts in enumerate(plan):
        (i, w), rest = parts[0], parts[1:]
        if not rest:
            out[k] = slices[i]
            continue
        np.multiply(slices[i], w, out=out[k])
        for j, wj in rest:
            out[k] += wj * slices[j]
    return out


def sample_neighbours(read_slice: Callable[[int], np.ndarray | None],
                      key_index: int,
                      slice_interval: float | None,
                      num_slices: int,
                      target_interval: float | None = 2.0, *,
                      interpolation: str = 'linear',
                      native_if_thicker: bool = False) -> np.ndarray:
    """Resample ``num_slices`` slices around a key slice to ``target_interval``.

    The rule (Sec. 3.1, "normalize the axial thickness of all data to 2mm"):
    neighbour p lies at p * target_interval mm, i.e. ``r * p`` native slices
    from the key slice with ``r = target_interval / slice_interval``; an
    integral ``r * p`` is read directly, otherwise it is linearly interpolated
    between the slices ``floor`` and ``ceil`` of it. A slice that does not
    exist falls back one slice at a time towards the key slice. A NaN or
    non-positive ``slice_interval`` repeats the key slice. Each slice is read
    at most once per call. Every loader (files, arrays) goes through
    :func:`neighbour_plan`, so they share this rule and its options.

    Args:
        read_slice: ``read_slice(i)`` returns slice ``i`` as an (H, W) float32
            HU array, or ``None`` when it does not exist.
        key_index: index of the key slice (must exist).
        slice_interval: native slice interval in mm.
        num_slices: D, odd.
        target_interval: output slice interval in mm; ``None`` reads native
            neighbours.
        interpolation, native_if_thicker: see :func:`neighbour_offsets`.

    Returns:
        float32 (D, H, W), ordered by increasing slice index, key slice at D // 2.
    """
    cache: dict[int, np.ndarray | None] = {}

    def get(i: int) -> np.ndarray | None:
        if i not in cache:
            img = read_slice(i)
            cache[i] = None if img is None else np.asarray(img, dtype=np.float32)
        return cache[i]

    key = get(key_index)
    if key is None:
        raise SliceReadError(f'key slice {key_index} does not exist')
    plan = neighbour_plan(lambda i: get(i) is not None, key_index, slice_interval,
                          num_slices, target_interval, interpolation=interpolation,
                          native_if_thicker=native_if_thicker)
    slices = {i: cache[i] for parts in plan for i, _ in parts}
    for i, img in slices.items():
        if img.shape != key.shape:
            raise SliceReadError(f'slice {i} has shape {img.shape}, the key '
                                 f'slice {key_index} has {key.shape}')
    return combine_plan(plan, slices)


_POOL: ThreadPoolExecutor | None = None
_POOL_KEY: tuple[int, int] = (0, 0)


def _decode_pool(threads: int) -> ThreadPoolExecutor:
    """A per-process thread pool for PNG decoding (OpenCV releases the GIL);
    made anew after a fork (data loader workers)."""
    global _POOL, _POOL_KEY
    if _POOL is None or _POOL_KEY != (os.getpid(), threads):
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix='png_decode')
        _POOL_KEY = (os.getpid(), threads)
    return _POOL


def load_multislice(image_dir: str, file_name: str, slice_interval: float | None,
                    num_slices: int, target_interval: float | None = 2.0,
                    threads: int = 2, *, interpolation: str = 'linear',
                    native_if_thicker: bool = False) -> np.ndarray:
    """Load ``num_slices`` slices around the key slice ``file_name`` in HU.

    Args:
        image_dir: the ``Images_png`` folder.
        file_name: ``PPPPPP_SS_RR/NNN.png`` (or DL_info's ``PPPPPP_SS_RR_NNN.png``).
        slice_interval: native slice interval (mm), DL_info's Spacing z.
        num_slices: D, odd.
        target_interval: output slice interval (mm), 2.0 in the paper;
            ``None`` reads native neighbours.
        threads: decode the needed PNGs with this many threads (1: in the
            calling thread). Each needed slice is decoded once.
        interpolation, native_if_thicker: options of the neighbour rule
            (:func:`neighbour_offsets`).

    Returns:
        float32 (D, H, W) in HU (see :func:`sample_neighbours` for the rule).

    Raises:
        SliceReadError: the key slice or a needed neighbour cannot be read
            (the message names the file).
    """
    folder, key_index = split_file_name(file_name)
    series_dir = osp.join(image_dir, folder)
    if not osp.isdir(series_dir):
        raise SliceReadError(f'{series_dir}: series folder not found')
    key_path = slice_path(image_dir, folder, key_index)
    if not osp.isfile(key_path):
        raise SliceReadError(f'{key_path}: key slice not found')

    def exists(i: int) -> bool:
        return i == key_index or (i >= 0 and osp.exists(slice_path(image_dir, folder, i)))

    # sample_neighbours' plan on file existence tells which slices it will
    # read: decode each of them once, in parallel, then let it sample.
    plan = neighbour_plan(exists, key_index, slice_interval, num_slices, target_interval,
                          interpolation=interpolation, native_if_thicker=native_if_thicker)
    order = sorted({i for parts in plan for i, _ in parts} | {key_index})
    paths = [slice_path(image_dir, folder, i) for i in order]
    if threads > 1 and len(paths) > 1:
        decoded = dict(zip(order, _decode_pool(threads).map(read_png_hu, paths)))
    else:
        decoded = dict(zip(order, map(read_png_hu, paths)))
    key_shape = decoded[key_index].shape
    for i, path in zip(order, paths):
        if decoded[i].shape != key_shape:
            raise SliceReadError(f'{path}: shape {decoded[i].shape} differs from the key '
                                 f'slice {key_path} {key_shape}')

    def read(i: int) -> np.ndarray | None:
        return decoded.get(i) if exists(i) else None

    return sample_neighbours(read, key_index, slice_interval, num_slices, target_interval,
                             interpolation=interpolation, native_if_thicker=native_if_thicker)


def windowing(hu: np.ndarray, window: Sequence[float] = DEFAULT_WINDOW) -> np.ndarray:
    """Map HU to the network's input range (Sec. 3.1).

    ``clip((hu - lo) / (hi - lo), 0, 1) * 255 - 50``, i.e. [-1024, 2050] HU
    -> [-50, 205].

    Args:
        hu: any-shape HU array.
        window: (lo, hi) in HU.

    Returns:
        float32 array of the same shape, values in [-50, 205].
    """
    lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise ValueError(f'window must be (lo, hi) with hi > lo, got {tuple(window)}')
    out = np.asarray(hu, dtype=np.float32) - lo
    out *= 255.0 / (hi - lo)
    np.clip(out, 0.0, 255.0, out=out)
    out -= 50.0
    return out


#: Fast lossless PNG settings (noise does not deflate well; Huffman-only is ~3x faster).
FAST_PNG_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 1,
                   cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY)


def write_png_hu(path: str, hu: np.ndarray, fast: bool = False) -> None:
    """Write an (H, W) HU array as a DeepLesion uint16 PNG (value = HU + 32768,
    rounded, clipped to 0..65535), creating the folder.

    Args:
        fast: :data:`FAST_PNG_PARAMS` (larger files, written ~3x faster)
            instead of OpenCV's default zlib level, which the NIH release uses.

    Raises:
        OSError: OpenCV could not write the file.
    """
    vals = np.clip(np.rint(np.asarray(hu, dtype=np.float64)) + HU_OFFSET, 0, 65535)
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    if not cv2.imwrite(path, vals.astype(np.uint16), list(FAST_PNG_PARAMS) if fast else []):
        raise OSError(f'{path}: cannot write PNG')
