"""Run DeepLesionFROCMetric in a CPU gloo process group (helper of
test_deeplesion_froc_metric.py, not a test itself; the test spawns
:func:`run_rank` with ``torch.multiprocessing.spawn``). By hand::

    python dist_froc_worker.py OUT_DIR PORT WORLD_SIZE

The process group is made with ``torch.distributed`` directly (mmengine's
``init_dist`` calls ``torch.cuda.set_device``); mmengine's ``dist`` helpers
then use it. Each rank works in OUT_DIR and evaluates its DistributedSampler-style share (interleaved, padded
by wrapping around) through mmengine's Evaluator and writes the returned
metrics to OUT_DIR/metrics_rank{r}.json; the metric dumps to OUT_DIR/dump.json.
"""
import json
import os
import os.path as osp
import sys

import numpy as np
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from a3d_det.evaluation import DeepLesionFROCMetric
from a3d_det.structures.lesion_data_sample import LesionDataSample

BREAKDOWNS = ('slice_interval', 'size', 'type')


def make_samples(num: int = 9, seed: int = 0) -> list:
    """Fake predicted data samples: some images without lesions or predictions,
    predictions near lesions, tied scores (one decimal)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(num):
        m = int(rng.integers(1, 4)) if i % 3 else 0
        n = int(rng.integers(1, 7)) if i != 4 else 0
        xy = rng.uniform(0, 200, (m, 2))
        gt = np.hstack([xy, xy + rng.uniform(8, 40, (m, 2))]).astype(np.float32)
        xy = rng.uniform(0, 200, (n, 2))
        pred = np.hstack([xy, xy + rng.uniform(8, 40, (n, 2))])
        near = min(m, n)
        pred[:near] = gt[:near] + rng.normal(0, 3, (near, 4))
        ds = LesionDataSample(metainfo=dict(
            file_name=f'{i:06d}_01_01/{i:03d}.png', ori_gt_bboxes=gt,
            slice_interval=1.25 if i % 2 else 5.0,
            gt_diameters_mm=rng.uniform(3, 60, m).astype(np.float32),
            gt_lesion_types=rng.integers(1, 9, m)))
        ds.pred_instances = InstanceData(
            bboxes=torch.from_numpy(pred.astype(np.float32)),
            scores=torch.from_numpy(rng.random(n).round(1).astype(
                np.float32)),
            labels=torch.zeros(n, dtype=torch.int64))
        samples.append(ds)
    return samples


def evaluate(samples: list, indices: list, size: int, dump_file: str) -> dict:
    evaluator = Evaluator(DeepLesionFROCMetric(breakdowns=BREAKDOWNS,
                                               dump_file=dump_file))
    for start in range(0, len(indices), 2):  # batches of 2
        evaluator.process([samples[i] for i in indices[start:start + 2]])
    return evaluator.evaluate(size)


def run_rank(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.chdir(out_dir)  # mmengine's result collection writes .dist_test here
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        samples = make_samples()
        total = -(-len(samples) // world_size) * world_size
        padded = [i % len(samples) for i in range(total)]
        metrics = evaluate(samples, padded[rank::world_size], len(samples),
                           osp.join(out_dir, 'dump.json'))
        with open(osp.join(out_dir, f'metrics_rank{rank}.json'), 'w') as f:
            json.dump(metrics, f)
    finally:
        torch_dist.destroy_process_group()


if __name__ == '__main__':
    out, port, world = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mp.spawn(run_rank, args=(world, port, out), nprocs=world, join=True)
