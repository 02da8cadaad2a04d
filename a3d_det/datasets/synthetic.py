"""Synthetic CT series in DeepLesion's exact on-disk format, where 3D context decides.

Every series is a body-like phantom (air, a fat rim, soft tissue, organs, a
spine, slow texture, per-slice noise) with two kinds of blob of the same
in-plane size and contrast:

* lesions: ellipsoids that are compact along z (half-extent 2 - 3.2 mm), so
  at +-2 mm from the key slice they are clearly smaller or gone;
* look-alikes: vessel-like tubes that run through the whole series almost
  unchanged.

On the key slice alone the two cannot be told apart; the neighbouring slices
(the 3D context of the paper) separate them. The output is what the NIH
release ships: ``Images_png/PPPPPP_SS_RR/NNN.png`` (uint16, HU + 32768),
only the slices within +-15 mm of a key slice, and ``DL_info.csv`` with all
18 columns, 1-based coordinates, Possibly_noisy rows (annotations of lesions
that are not there), varied slice intervals (0.625 - 5 mm) and a
patient-level 70/15/15 Train_Val_Test split.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

import cv2
import numpy as np

from a3d_det.datasets.deeplesion import slice_path, write_png_hu
from a3d_det.datasets.dl_info import write_dl_info

#: Native slice intervals (mm) and how often each is drawn.
SLICE_INTERVALS = (0.625, 1.0, 1.25, 2.0, 2.5, 5.0)
SLICE_INTERVAL_WEIGHTS = (0.1, 0.15, 0.2, 0.1, 0.2, 0.25)
#: The release gives the slices within this distance of a key slice.
CONTEXT_MM = 15.0
#: Name of the file that records the generator's arguments.
PARAMS_FILE = 'synthetic.json'
#: Bumped whenever the output for given arguments changes (recorded in PARAMS_FILE;
#: trees recorded without a version are version 1).
GENERATOR_VERSION = 1
DICOM_WINDOWS = ((-175.0, 275.0), (-160.0, 240.0), (-1350.0, 150.0), (-1500.0, 500.0))
def _blob(img: np.ndarray, cx: float, cy: float, a: float, b: float, theta: float,
          delta: float) -> None:
    """Add ``delta`` HU inside an ellipse with a one-pixel soft edge (in place).

    Args:
        img: (H, W) float32.
        cx, cy: centre (0-based px); a, b: half-axes (px); theta: angle of a (rad).
    """
    if a <= 0.3 or b <= 0.3:
        return
    h, w = img.shape
    r = max(a, b) + 2
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, w)
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    c, s = math.cos(theta), math.sin(theta)
    u, v = (dx * c + dy * s) / a, (-dx * s + dy * c) / b
    d = np.sqrt(u * u + v * v)
    weight = np.clip((1.0 - d) * min(a, b) + 0.5, 0.0, 1.0)
    img[y0:y1, x0:x1] += delta * weight


def _ellipse_mask(h: int, w: int, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return ((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2 <= 1.0


class SyntheticSeries:
    """One synthetic CT series: static anatomy plus tubes and lesions in mm-z."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, size: int) -> None:
        self.rng, self.h, self.w = rng, h, w
        self.unit = size / 128.0  # px per "default-size px"
        cx, cy = w / 2 + rng.uniform(-0.03, 0.03) * w, h / 2 + rng.uniform(-0.03, 0.03) * h
        ax, ay = 0.43 * w * rng.uniform(0.9, 1.05), 0.36 * h * rng.uniform(0.9, 1.08)
        self.body = (cx, cy, ax, ay)
        base = np.full((h, w), -1000.0, np.float32)
        base[_ellipse_mask(h, w, cx, cy, ax, ay)] = -100.0  # subcutaneous fat
        rim = rng.uniform(0.06, 0.12)
        inner = _ellipse_mask(h, w, cx, cy, ax * (1 - rim), ay * (1 - rim))
        base[inner] = rng.uniform(35, 50)  # muscle / soft tissue
        # Organs: big smooth blobs (liver-, spleen-, kidney-like), spine.
        for _ in range(rng.integers(1, 4)):
            ox = cx + rng.uniform(-0.45, 0.45) * ax
            oy = cy + rng.uniform(-0.4, 0.3) * ay
            oa, ob = rng.uniform(0.2, 0.4) * ax, rng.uniform(0.2, 0.4) * ay
            organ = np.zeros((h, w), np.float32)
            _blob(organ, ox, oy, oa, ob, rng.uniform(0, math.pi), 1.0)
            base += (organ * inner) * (rng.uniform(50, 70) - base) * (organ > 0)
        sx, sy, sr = cx, cy + 0.72 * ay * (1 - rim), 0.09 * ay
        _blob(base, sx, sy, sr, sr, 0.0, 600.0)
        # Slow texture: low-resolution noise blown up.
        low = rng.standard_normal((max(h // 8, 2), max(w // 8, 2))).astype(np.float32)
        base += cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) * 8.0 * inner
        self.base = base
        self.inner = inner
        self.noise_sd = rng.uniform(8.0, 16.0)
        self.blobs: list[tuple[float, float, float]] = []  # (x, y, radius) taken
        self.tubes: list[dict[str, float]] = []
        self.lesions: list[dict[str, float]] = []

    def _contrast(self) -> float:
        return float(self.rng.choice([-1.0, 1.0], p=[0.35, 0.65]) * self.rng.uniform(60, 130))

    def _free_spot(self, radius: float, tries: int = 50) -> tuple[float, float] | None:
        cx, cy, ax, ay = self.body
        for _ in range(tries):
            ang, rad = self.rng.uniform(0, 2 * math.pi), math.sqrt(self.rng.uniform(0, 1))
            x = cx + 0.7 * ax * rad * math.cos(ang)
            y = cy + 0.6 * ay * rad * math.sin(ang)
            if ((x - cx) / (0.8 * ax)) ** 2 + ((y - cy) / (0.8 * ay)) ** 2 > 1:
                continue
            if all(math.hypot(x - bx, y - by) > radius + br + 3 * self.unit
                   for bx, by, br in self.blobs):
                self.blobs.append((x, y, radius))
                return x, y
        return None

    def add_tube(self, z_mid: float) -> None:
        """A vessel-like tube along z: same in-plane size and contrast as lesions."""
        r = self.rng.uniform(5, 15) * self.unit
        r2 = r * self.rng.uniform(0.75, 1.0)
        spot = self._free_spot(r + 1.5 * self.unit)
        if spot is None:
            return
        self.tubes.append(dict(x=spot[0], y=spot[1], z=z_mid, a=r, b=r2,
                               theta=self.rng.uniform(0, math.pi),
                               vx=self.rng.uniform(-0.04, 0.04) * self.unit,
                               vy=self.rng.uniform(-0.04, 0.04) * self.unit,
                               delta=self._contrast()))

    def add_lesion(self, z: float) -> dict[str, float] | None:
        """An ellipsoid lesion centred on the key slice at ``z`` mm."""
        a = self.rng.uniform(5, 15) * self.unit
        b = a * self.rng.uniform(0.6, 1.0)
        spot = self._free_spot(a)
        if spot is None:
            return None
        les = dict(x=spot[0], y=spot[1], z=z, a=a, b=b,
                   theta=self.rng.uniform(0, math.pi),
                   c=self.rng.uniform(2.0, 3.2), delta=self._contrast())
        self.lesions.append(les)
        return les

    def render(self, z: float) -> np.ndarray:
        """The slice at ``z`` mm as (H, W) float32 HU."""
        img = self.base.copy()
        for t in self.tubes:
            dz = z - t['z']
            _blob(img, t['x'] + t['vx'] * dz, t['y'] + t['vy'] * dz, t['a'], t['b'],
                  t['theta'], t['delta'])
        for les in self.lesions:
            f = 1.0 - ((z - les['z']) / les['c']) ** 2
            if f > 0:  # ellipsoid cross-section
                s = math.sqrt(f)
                _blob(img, les['x'], les['y'], les['a'] * s, les['b'] * s, les['theta'],
                      les['delta'])
        img += self.rng.standard_normal(img.shape, dtype=np.float32) * self.noise_sd
        return img


def _recist_record(rng: np.random.Generator, les: dict[str, float],
                   pad: float) -> dict[str, Any]:
    """RECIST axes (0-based) of a lesion and its DeepLesion box (extent + pad)."""
    c, s = math.cos(les['theta']), math.sin(les['theta'])
    x, y, a, b = les['x'], les['y'], les['a'], les['b']
    pts = np.array([x - a * c, y - a * s, x + a * c, y + a * s,
                    x + b * s, y - b * c, x - b * s, y + b * c])
    pts = pts + rng.normal(0, 0.25, 8)
    xs, ys = pts[0::2], pts[1::2]
    bbox = np.array([xs.min() - pad, ys.min() - pad, xs.max() + pad, ys.max() + pad])
    long_d = math.hypot(pts[2] - pts[0], pts[3] - pts[1])
    short_d = math.hypot(pts[6] - pts[4], pts[7] - pts[5])
    return dict(recist=pts, bbox=bbox, diameters_px=(long_d, short_d))


def make_synthetic_deeplesion(out_dir: str, num_series: int = 160, size: int = 128,
                              seed: int = 0, non_square_fraction: float = 0.1,
                              noisy_fraction: float = 0.04,
                              overwrite: bool = False) -> dict[str, Any]:
    """Write a synthetic DeepLesion tree (``Images_png/`` and ``DL_info.csv``).

    Args:
        out_dir: output folder (created).
        num_series: number of CT series (1 - 2 key slices each).
        size: image height in px (and width of square images); lesion and
            tube diameters are 10 - 30 px at size 128 and scale with it.
        seed: the output is a function of the arguments only.
        non_square_fraction: share of series with width 1.25 x size.
        noisy_fraction: share of key images with an extra Possibly_noisy row
            (an annotation where there is no lesion).
        overwrite: allow writing over an existing ``DL_info.csv``.

    Returns:
        Summary: ``num_series``, ``num_images``, ``num_lesions``,
        ``num_noisy``, ``num_slices``, ``splits`` (images per Train_Val_Test).
    """
    if num_series < 1:
        raise ValueError(f'num_series must be >= 1, got {num_series}')
    if size < 32:
        raise ValueError(f'size must be >= 32 px, got {size}')
    csv_path = osp.join(out_dir, 'DL_info.csv')
    if osp.exists(csv_path) and not overwrite:
        raise FileExistsError(f'{csv_path} already exists (overwrite it explicitly)')
    image_dir = osp.join(out_dir, 'Images_png')
    os.makedirs(image_dir, exist_ok=True)

    # Series -> patients (1 - 3 series each); patient-level 70/15/15 split.
    top = np.random.default_rng([seed, 0])
    patients, series_of = [], []
    while len(series_of) < num_series:
        pid = len(patients) + 1
        n = min(int(top.integers(1, 4)), num_series - len(series_of))
        patients.append(pid)
        for k in range(n):
            series_of.append((pid, 1 + k // 2, 1 + k % 2))
    order = top.permutation(len(patients))
    split_of = {}
    for rank, i in enumerate(order):
        frac = rank / len(patients)
        split_of[patients[i]] = 1 if frac < 0.7 else (2 if frac < 0.85 else 3)

    records: list[dict[str, Any]] = []
    pool = ThreadPoolExecutor(max_workers=2)  # cv2 releases the GIL while encoding
    try:
        num_slices = _generate(series_of, split_of, seed, size, non_square_fraction,
                               noisy_fraction, image_dir, records, pool)
    finally:
        pool.shutdown(wait=True)
    num_images = len({r['file_name'] for r in records})
    summary = dict(
        num_series=num_series, num_images=num_images,
        num_lesions=sum(not r['noisy'] for r in records),
        num_noisy=sum(bool(r['noisy']) for r in records), num_slices=num_slices,
        splits={s: len({r['file_name'] for r in records if r['split'] == s}) for s in (1, 2, 3)})
    params = dict(num_series=num_series, size=size, seed=seed,
                  non_square_fraction=non_square_fraction, noisy_fraction=noisy_fraction,
                  version=GENERATOR_VERSION)
    # The parameters first, DL_info.csv last: a tree with DL_info.csv is complete.
    tmp = osp.join(out_dir, f'.{PARAMS_FILE}.{os.getpid()}.tmp')
    with open(tmp, 'w') as f:
        json.dump(dict(params=params, summary=summary), f, indent=1)
    os.replace(tmp, osp.join(out_dir, PARAMS_FILE))
    tmp = osp.join(out_dir, f'.DL_info.csv.{os.getpid()}.tmp')
    write_dl_info(tmp, records)
    os.replace(tmp, csv_path)
    return summary


def ensure_synthetic_deeplesion(out_dir: str, **kwargs) -> bool:
    """Generate the tree under ``out_dir`` unless ``DL_info.csv`` is there.

    Holds an exclusive lock on ``out_dir/.synthetic.lock`` meanwhile, so
    several jobs started on the same folder generate it once and none reads
    a half-written tree.

    Returns:
        True when this call generated the data.
    """
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, '.synthetic.lock'), 'w') as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if osp.isfile(osp.join(out_dir, 'DL_info.csv')):
            return False
        make_synthetic_deeplesion(out_dir, **kwargs)
        return True


def _generate(series_of: list[tuple[int, int, int]], split_of: dict[int, int], seed: int,
              size: int, non_square_fraction: float, noisy_fraction: float, image_dir: str,
              records: list[dict[str, Any]], pool: ThreadPoolExecutor) -> int:
    """Render every series (PNG writes go to ``pool``) and append its DL_info
    records; returns the number of slices written."""
    num_slices = 0
    for sidx, (pid, study, series_id) in enumerate(series_of):
        rng = np.random.default_rng([seed, 1, sidx])
        h = size
        w = int(round(size * 1.25)) if rng.random() < non_square_fraction else size
        dz = float(rng.choice(SLICE_INTERVALS, p=SLICE_INTERVAL_WEIGHTS))
        spacing = round(0.8 * 512 / size * rng.uniform(0.85, 1.15), 4)
        vol = SyntheticSeries(rng, h, w, size)
        half = int(math.floor(CONTEXT_MM / dz + 1e-9))
        n_keys = 1 if rng.random() < 0.7 else 2
        first_key = int(rng.integers(1, 40)) + half
        keys = [first_key + k * (2 * half + int(rng.integers(1, 10))) for k in range(n_keys)]
        z_mid = 0.5 * (keys[0] + keys[-1]) * dz
        for _ in range(rng.integers(1, 4)):
            vol.add_tube(z_mid)
        key_lesions = {}
        for key in keys:
            n_les = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
            if rng.random() < 0.02:
                n_les = 0  # only a noisy annotation: the image is dropped
            key_lesions[key] = [les for les in (vol.add_lesion(key * dz) for _ in range(n_les))
                                if les is not None]
        on_disk = sorted({i for key in keys for i in range(key - half, key + half + 1)})
        folder = f'{pid:06d}_{study:02d}_{series_id:02d}'
        window = DICOM_WINDOWS[int(rng.integers(len(DICOM_WINDOWS)))]
        gender = 'M' if rng.random() < 0.5 else 'F'
        age = float(rng.integers(18, 90)) if rng.random() > 0.05 else math.nan
        split = split_of[pid]
        pad = 5.0 * size / 512  # DeepLesion pads the RECIST extent by 5 px at 512
        os.makedirs(osp.join(image_dir, folder), exist_ok=True)
        writes = []
        for i in on_disk:
            writes.append(pool.submit(write_png_hu, slice_path(image_dir, folder, i),
                                      vol.render(i * dz), fast=True))
        for fut in writes:
            fut.result()  # re-raise write errors; bounds the queue to one series
        num_slices += len(writes)
        for key in keys:
            lesions = list(key_lesions[key])
            noisy_flags = [False] * len(lesions)
            if not lesions or rng.random() < noisy_fraction:
                # Possibly_noisy: an annotation with no lesion under it.
                a = rng.uniform(5, 15) * vol.unit
                cx, cy, ax, ay = vol.body
                lesions.append(dict(x=cx + rng.uniform(-0.5, 0.5) * ax,
                                    y=cy + rng.uniform(-0.5, 0.5) * ay, z=key * dz,
                                    a=a, b=a * rng.uniform(0.6, 1.0),
                                    theta=rng.uniform(0, math.pi)))
                noisy_flags.append(True)
            for les, noisy in zip(lesions, noisy_flags):
                ann = _recist_record(rng, les, pad)
                records.append(dict(
                    file_name=f'{folder}/{key:03d}.png', patient=pid, study=study,
                    series=series_id, recist=ann['recist'], bbox=ann['bbox'],
                    diameters_px=ann['diameters_px'],
                    location=(les['x'] / w, les['y'] / h, (key - on_disk[0] + 1) / len(on_disk)),
                    lesion_type=-1 if split == 1 else int(rng.integers(1, 9)),
                    noisy=noisy, slice_range=(key - half, key + half),
                    spacing=(spacing, spacing, dz), image_size=(h, w),
                    dicom_window=window, gender=gender, age=age, split=split))
    return num_slices
