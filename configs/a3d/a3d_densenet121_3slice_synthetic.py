# The embedded default: A3D (3 slices) trained from scratch on synthetic
# DeepLesion-format data at native size (128 px), sized for 2 CPU cores.
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/synthetic_deeplesion.py',
    '../_base_/default_runtime.py',
]

num_slices = 3
model = dict(
    backbone=dict(num_slices=num_slices, fusion=dict(type='A3DConv'), pretrained=None,
                  norm_cfg=dict(type='GN', num_groups=32)),
    neck=dict(out_channels=128),
    roi_head=dict(bbox_head=dict(fc_out_channels=512),
                  mask_head=dict(num_convs=2, conv_out_channels=64)))
sync_bn = None

train_dataloader = dict(num_workers=1, dataset=dict(num_slices=num_slices))
val_dataloader = dict(num_workers=1, dataset=dict(num_slices=num_slices))
test_dataloader = dict(num_workers=1, dataset=dict(num_slices=num_slices))

max_iters = 500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-4),
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=250, by_epoch=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
