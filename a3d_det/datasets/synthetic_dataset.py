"""``SyntheticDeepLesionDataset``: DeepLesion-format synthetic data, generated on first use."""
from __future__ import annotations

import json
import os.path as osp

from mmengine.dist import barrier, get_rank

from a3d_det.datasets.deeplesion_dataset import DeepLesionDataset
from a3d_det.datasets.synthetic import GENERATOR_VERSION, PARAMS_FILE, ensure_synthetic_deeplesion
from a3d_det.registry import DATASETS


@DATASETS.register_module()
class SyntheticDeepLesionDataset(DeepLesionDataset):
    """A :class:`DeepLesionDataset` over synthetic data made under ``data_root``.

    When ``data_root/DL_info.csv`` is missing, rank 0 generates the tree with
    :func:`make_synthetic_deeplesion` (under a file lock, so separate jobs on
    the same folder generate it once) and the other ranks wait at a barrier.
    When it exists, the recorded generator arguments must match
    ``synthetic`` (otherwise a stale tree would be used silently).

    Args:
        synthetic: keyword arguments of :func:`make_synthetic_deeplesion`
            (``num_series``, ``size``, ``seed``, ...), e.g.
            ``dict(num_series=160, size=128, seed=0)``.
        data_root, **kwargs: as :class:`DeepLesionDataset`.
    """

    def __init__(self, data_root: str = 'data/synthetic_deeplesion',
                 synthetic: dict | None = None, **kwargs) -> None:
        synthetic = dict(synthetic or {})
        if get_rank() == 0:
            # locked: separate jobs on the same data_root generate it once
            ensure_synthetic_deeplesion(data_root, **synthetic)
        barrier()
        self._check_params(data_root, synthetic)
        kwargs.setdefault('ann_file', 'DL_info.csv')
        super().__init__(data_root=data_root, **kwargs)

    @staticmethod
    def _check_params(data_root: str, synthetic: dict) -> None:
        path = osp.join(data_root, PARAMS_FILE)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path}: missing; {data_root} does not look like synthetic data '
                f'made by make_synthetic_deeplesion (use DeepLesionDataset for real data)')
        with open(path) as f:
            recorded = json.load(f)['params']
        if recorded.get('version', 1) != GENERATOR_VERSION:
            raise ValueError(
                f'{data_root} was made by version {recorded.get("version", 1)} of the '
                f'synthetic generator, this is version {GENERATOR_VERSION}; delete the folder '
                f'to regenerate it')
        differ = {k: (recorded.get(k), v) for k, v in synthetic.items() if recorded.get(k) != v}
        if differ:
            raise ValueError(
                f'{data_root} holds synthetic data made with other arguments '
                f'(recorded, asked): {differ}; delete the folder or change data_root')
