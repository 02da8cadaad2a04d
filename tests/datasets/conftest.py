"""Small generated DeepLesion-format trees for the data tests."""
import os.path as osp

import numpy as np
import pytest

from a3d_det.datasets.deeplesion import write_png_hu
from a3d_det.datasets.dl_info import write_dl_info
from a3d_det.datasets.synthetic import make_synthetic_deeplesion


@pytest.fixture(scope='session')
def synthetic_tree(tmp_path_factory):
    """A small synthetic tree (shared, read-only): 24 series at 64 px."""
    root = str(tmp_path_factory.mktemp('synthetic'))
    summary = make_synthetic_deeplesion(root, num_series=24, size=64, seed=3,
                                        noisy_fraction=0.3)
    return root, summary


def _lesion_record(file_name, box, split=1, noisy=False, interval=2.0, size=(32, 32),
                  lesion_type=-1, recist=None):
    """A DL_info record (0-based) around ``box``."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if recist is None:
        recist = [x1, cy, x2, cy, cx, y1, cx, y2]
    return dict(file_name=file_name, patient=1, study=1, series=1,
                recist=np.array(recist, float), bbox=np.array(box, float),
                diameters_px=(x2 - x1, y2 - y1), location=(0.5, 0.5, 0.5),
                lesion_type=lesion_type, noisy=noisy, slice_range=(1, 9),
                spacing=(0.7, 0.7, interval), image_size=size,
                dicom_window=(-175, 275), gender='F', age=float('nan'), split=split)


@pytest.fixture
def lesion_record():
    """``lesion_record(file_name, box, split=1, noisy=False, ...)`` -> DL_info record."""
    return _lesion_record


@pytest.fixture
def ramp_tree(tmp_path):
    """Series ``000001_01_01`` with slices 1..9 of constant HU = 100 * index,
    except slice 4, which is missing; key slice 5. Returns (image_dir, write_csv)."""
    image_dir = osp.join(str(tmp_path), 'Images_png')
    for i in range(1, 10):
        if i != 4:
            write_png_hu(osp.join(image_dir, '000001_01_01', f'{i:03d}.png'),
                         np.full((6, 8), 100.0 * i))

    def write_csv(records, name='DL_info.csv'):
        path = osp.join(str(tmp_path), name)
        write_dl_info(path, records)
        return path

    return image_dir, write_csv
