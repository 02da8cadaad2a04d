# AlignShift, 3 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (f): a TSM shift weighted by the slice thickness (Yang et al.,
# MICCAI 2020); inputs are the native neighbouring slices (no 2 mm
# resampling), as in its official code.
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D = 3 is the bases' num_slices (model.backbone and the datasets).
model = dict(backbone=dict(fusion=dict(type='AlignShiftConv')))
# Native neighbouring slices (slice_interval=None): AlignShift reads the
# slice thickness instead of resampling to 2 mm.
train_dataloader = dict(dataset=dict(slice_interval=None))
val_dataloader = dict(dataset=dict(slice_interval=None))
test_dataloader = dict(dataset=dict(slice_interval=None))
