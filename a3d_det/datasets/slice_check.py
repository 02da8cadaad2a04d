"""Which slice files the samples of a DeepLesion tree read, and which of them are unreadable.

A training sample is the key slice and the neighbours the multi-slice
loading reads (:func:`~a3d_det.datasets.deeplesion.sample_neighbours`); one
unreadable file among them makes the sample unusable. The files are found by
running that same neighbour rule with a reader that only records what it is
asked for, for every loading setting of the configs (3 and 7 slices, 2 mm
resampling and native neighbours), so the check cannot drift from the loader.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Iterable, Sequence

import numpy as np

from a3d_det.datasets.deeplesion import (SliceReadError, read_png_hu, sample_neighbours, slice_path,
                                         split_file_name)

#: The loading settings of the configs (``sample_neighbours`` arguments): 3
#: and 7 slices resampled to 2 mm, the published 7-slice offsets, and native
#: neighbours (AlignShift's ``native_if_thicker`` reads these or the 2 mm ones).
LOAD_SETTINGS: tuple[dict, ...] = (
    dict(num_slices=3, target_interval=2.0), dict(num_slices=7, target_interval=2.0),
    dict(num_slices=7, target_interval=2.0, interpolation='published'),
    dict(num_slices=3, target_interval=None), dict(num_slices=7, target_interval=None))


def sample_slice_paths(image_dir: str, file_name: str, slice_interval: float | None,
                       settings: Iterable[dict] = LOAD_SETTINGS
                       ) -> list[str]:
    """Paths of the slice files a sample reads under any of ``settings``.

    Args:
        image_dir: the ``Images_png`` folder.
        file_name: the key slice, ``PPPPPP_SS_RR/NNN.png`` (or DL_info's form).
        slice_interval: native slice interval in mm (NaN: key slice only).
        settings: keyword arguments of ``sample_neighbours`` (``num_slices``,
            ``target_interval``, ``interpolation``, ``native_if_thicker``).

    Returns:
        Sorted paths, the key slice's included; missing neighbours are not
        read (loading falls back towards the key slice), a missing key slice
        is listed.
    """
    folder, key = split_file_name(file_name)
    key_path = slice_path(image_dir, folder, key)
    if not osp.isfile(key_path):
        return [key_path]
    read: set[str] = set()
    probe = np.zeros((1, 1), np.float32)

    def record(i: int) -> np.ndarray | None:
        path = slice_path(image_dir, folder, i)
        if i < 0 or not osp.isfile(path):
            return None
        read.add(path)
        return probe

    for options in settings:
        sample_neighbours(record, key, slice_interval, **options)
    return sorted(read)


def slice_status(path: str) -> tuple[str, tuple[int, ...] | None, str | None]:
    """``(path, shape, None)`` when the slice decodes, ``(path, None, reason)`` if not."""
    try:
        return path, tuple(read_png_hu(path).shape), None
    except SliceReadError as e:
        return path, None, str(e)


def unreadable_slices(image_dir: str, images: Sequence[dict],
                      imap=map) -> dict[str, tuple[str, list[str]]]:
    """Every unreadable slice file that some sample needs.

    Args:
        image_dir: the ``Images_png`` folder.
        images: raw image dicts with ``file_name`` and ``slice_interval``.
        imap: ``map``-like, to decode the files in parallel (e.g. a pool's
            ``imap``); each needed file is decoded once.

    Returns:
        ``{path: (reason, [key file names of the samples needing it])}``; a
        neighbour whose size differs from its key slice's is unreadable too
        (loading refuses it).
    """
    needs: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    for im in images:
        si = im.get('slice_interval')
        paths = sample_slice_paths(image_dir, im['file_name'],
                                   float(si) if si is not None else None)
        folder, key = split_file_name(im['file_name'])
        keys[im['file_name']] = slice_path(image_dir, folder, key)
        for path in paths:
            needs.setdefault(path, []).append(im['file_name'])
    status = {path: (shape, reason) for path, shape, reason in imap(slice_status, sorted(needs))}
    bad: dict[str, tuple[str, list[str]]] = {}
    for path, users in needs.items():
        shape, reason = status[path]
        if reason is not None:
            bad[path] = (reason, users)
            continue
        for user in users:
            key_shape = status[keys[user]][0]
            if key_shape is not None and shape != key_shape:
                reason = f'{path}: shape {shape} differs from its key slice {keys[user]} {key_shape}'
                bad.setdefault(path, (reason, []))[1].append(user)
    return bad
