"""Count host-device synchronisations of one training step and one prediction.

    python tools/analysis/count_host_syncs.py [CONFIG] [--size 128] [--batch 2]

Builds CONFIG's detector (default: A3D, 3 slices; no pretrained weights),
runs one prediction (with and without masks) and one training step (loss
and backward) on random inputs of SIZE x SIZE with one lesion per image, and
prints the operations that make the host wait for a CUDA device, by operator
and by call site (``a3d_det.utils.host_sync``; counted at PyTorch's
dispatcher, so it runs on the CPU). docs/benchmarks.md lists what remains.
"""
from __future__ import annotations

import argparse

import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from a3d_det.registry import MODELS
from a3d_det.structures.lesion_data_sample import LesionDataSample
from a3d_det.utils.cli import run_cli
from a3d_det.utils.errors import UserInputError
from a3d_det.utils.host_sync import HostSyncCounter
from a3d_det.utils.runner_config import load_config

DEFAULT = 'configs/a3d/a3d_densenet121_3slice_deeplesion.py'


def _batch(num_slices: int, size: int, batch: int) -> dict:
    inputs, samples = [], []
    for i in range(batch):
        sample = LesionDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
            thickness=2.0 + i))
        gt = InstanceData()
        gt.bboxes = torch.tensor([[size * 0.3, size * 0.3, size * 0.55, size * 0.5]])
        gt.labels = torch.zeros(1, dtype=torch.int64)
        masks = torch.zeros(1, size, size, dtype=torch.bool)
        masks[:, int(size * 0.3):int(size * 0.5), int(size * 0.3):int(size * 0.55)] = True
        gt.masks = masks
        sample.gt_instances = gt
        samples.append(sample)
        inputs.append(torch.randn(1, num_slices, size, size) * 50)
    return dict(inputs=inputs, data_samples=samples)


def _report(title: str, counter: HostSyncCounter) -> None:
    print(f'\n{title}: {counter.total} synchronising operations')
    for name, count in sorted(counter.by_operator().items(), key=lambda x: -x[1]):
        print(f'  {count:6d}  {name}')
    print('  by call site:')
    for (name, site), count in sorted(counter.counts.items(), key=lambda x: -x[1]):
        print(f'  {count:6d}  {name:28s} {site}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?', default=DEFAULT)
    parser.add_argument('--size', type=int, default=128, help='input side (pixels)')
    parser.add_argument('--batch', type=int, default=2, help='images per batch')
    args = parser.parse_args()
    if args.size < 64 or args.batch < 1:
        raise UserInputError('--size must be >= 64 and --batch >= 1')
    cfg = load_config(args.config)
    init_default_scope(cfg.get('default_scope', 'a3d_det'))
    cfg.model.backbone.pretrained = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    data = _batch(model.backbone.num_slices, args.size, args.batch)

    # Predictions first: the training step updates batch-norm statistics.
    model.eval()
    for with_mask in (False, True):
        with torch.no_grad(), HostSyncCounter() as counter:
            preds = model.predict(**model.data_preprocessor(data, False), with_mask=with_mask)
        dets = sum(len(p.pred_instances.bboxes) for p in preds)
        _report(f'prediction, {"with" if with_mask else "without"} masks '
                f'({dets} detections)', counter)

    model.train()
    with HostSyncCounter() as counter:
        losses = model(**model.data_preprocessor(data, True), mode='loss')
        sum(losses.values()).backward()
    _report('training step (loss + backward)', counter)


if __name__ == '__main__':
    run_cli(main)
