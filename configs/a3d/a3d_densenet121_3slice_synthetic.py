# The embedded default: A3D (3 slices) trained from random initialisation on
# synthetic DeepLesion-format data (SyntheticDeepLesionDataset, generated
# under data/synthetic_deeplesion on first use) at its native size (128 px,
# no resize), iteration-based and sized for 2 CPU cores.
#
#   python tools/train.py configs/a3d/a3d_densenet121_3slice_synthetic.py
#
# The recipe, chosen so that every seed learns (results in docs/training.md,
# "Synthetic default results"):
# * GroupNorm instead of BN in the backbone: batch 2 from scratch makes BN
#   statistics noisy, and GN behaves the same in training and testing;
# * AdamW, lr 2e-4, linear warm-up over 50 iterations, cosine decay, the
#   paper's gradient clipping (35);
# * a soft-tissue window (-175, 275) HU instead of the paper's
#   (-1024, 2050): the synthetic lesions differ from their surroundings by
#   60-130 HU, 5-11 grey levels in the wide window, 34-74 in this one;
# * narrower neck and heads than the paper's (128 feature channels, 2 FC of
#   512, mask head of 2 convs of 64) to fit the CPU budget.
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

window = (-175, 275)
_data = dict(num_slices=num_slices, window=window)
train_dataloader = dict(num_workers=1, dataset=_data)
val_dataloader = dict(num_workers=1, dataset=_data)
test_dataloader = dict(num_workers=1, dataset=_data)

max_iters = 1000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=2e-6),
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=500, by_epoch=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
