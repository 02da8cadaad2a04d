"""A tiny randomly initialised LesionMaskRCNN config and checkpoint for
inference tests (real DenseNet3D with A3D fusion, shrunk to run in
milliseconds on a 64 px input)."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_SLICES = 3
INPUT_SIZE = 64

# The project's model and DeepLesion dataset bases, shrunk: the real
# DenseNet3D with A3D fusion at growth 8 and one layer per block, narrow
# heads, and test images resized to 64 px instead of 512.
TINY_CONFIG = f'''
_base_ = [
    '{REPO}/configs/_base_/models/mask_rcnn_densenet3d.py',
    '{REPO}/configs/_base_/datasets/deeplesion.py',
    '{REPO}/configs/_base_/default_runtime.py',
]
num_slices = {NUM_SLICES}
model = dict(
    backbone=dict(num_slices=num_slices, pretrained=None, growth_rate=8,
                  block_config=(1, 1, 1), num_init_features=16, bn_size=2),
    neck=dict(out_channels=16),
    roi_head=dict(bbox_head=dict(fc_out_channels=32),
                  mask_head=dict(num_convs=1, conv_out_channels=8)))
test_pipeline = [
    dict(type='LoadMultiSliceFromFile'),
    dict(type='LoadLesionAnnotations', with_mask=False),
    dict(type='WindowCT'),
    dict(type='ResizeCT', size={INPUT_SIZE}),
    dict(type='PadCT', size_divisor=32),
    dict(type='PackLesionInputs'),
]
test_dataloader = dict(dataset=dict(num_slices=num_slices, pipeline=test_pipeline))
'''


def write_tiny_detector(folder: str, seed: int = 0):
    """Write ``tiny.py`` and ``tiny.pth`` (an mmengine-style checkpoint with
    ``meta`` and a ``message_hub`` holding HistoryBuffers) into ``folder``."""
    from a3d_det.apis import init_detector
    cfg_path = osp.join(folder, 'tiny.py')
    with open(cfg_path, 'w') as f:
        f.write(TINY_CONFIG)
    torch.manual_seed(seed)
    model = init_detector(cfg_path)
    hub = MessageHub.get_instance('tiny_detector_ckpt')
    hub.update_scalar('train/loss', 1.5)
    ckpt = dict(meta=dict(epoch=1, iter=10), state_dict=model.state_dict(),
                message_hub=hub.state_dict())
    ckpt_path = osp.join(folder, 'tiny.pth')
    torch.save(ckpt, ckpt_path)
    return cfg_path, ckpt_path, Config.fromfile(cfg_path)
