"""A tiny randomly initialised LesionMaskRCNN config and checkpoint for
inference tests (real DenseNet3D with A3D fusion, shrunk to run in
milliseconds on a 64 px input)."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

NUM_SLICES = 3
INPUT_SIZE = 64

TINY_CONFIG = f'''
default_scope = 'a3d_det'
num_slices = {NUM_SLICES}
model = dict(
    type='LesionMaskRCNN',
    backbone=dict(type='DenseNet3D', num_slices=num_slices, fusion=dict(type='A3DConv'),
                  growth_rate=8, block_config=(1, 1, 1), num_init_features=16, bn_size=2),
    neck=dict(type='FPN3Dto2D', out_channels=16),
    rpn_head=dict(type='LesionRPNHead', anchor_generator=dict(
        type='AnchorGenerator', sizes=((16, 24, 32, 48, 96, 192),),
        aspect_ratios=((0.5, 1.0, 2.0),))),
    roi_head=dict(
        type='LesionRoIHead',
        bbox_roi_extractor=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
        bbox_head=dict(type='SharedFCBBoxHead', fc_out_channels=32),
        mask_roi_extractor=dict(type='RoIAlign', output_size=14, sampling_ratio=2),
        mask_head=dict(type='FCNMaskHead', conv_out_channels=8),
        proposal_matcher=dict(type='Matcher', high_threshold=0.5, low_threshold=0.5),
        sampler=dict(type='BalancedPositiveNegativeSampler', batch_size_per_image=64,
                     positive_fraction=0.25),
        box_coder=dict(type='BoxCoder', weights=(10.0, 10.0, 5.0, 5.0))))
test_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval=2.0),
    dict(type='LoadLesionAnnotations', with_mask=True),
    dict(type='WindowCT'),
    dict(type='ResizeCT', size={INPUT_SIZE}),
    dict(type='PadCT', size_divisor=32),
    dict(type='PackLesionInputs'),
]
test_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
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
