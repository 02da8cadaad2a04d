# AlignShift, 3 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (f): a TSM shift weighted by the slice thickness (Yang et al.,
# MICCAI 2020), with the published AlignShift settings (docs/reproduction.md).
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D = 3 is the bases' num_slices (model.backbone and the datasets).
# pad_mode='own': the first/last slice of a shifted channel group keeps its
# own value (the published shift_padding_zero=False; a choice, not a bug).
# Test score threshold 0.001, as published for AlignShift (5e-5 for the others).
model = dict(backbone=dict(fusion=dict(type='AlignShiftConv', pad_mode='own')),
             roi_head=dict(score_thr=0.001))
# Inputs as published: native neighbouring slices when the slice interval is
# >= 2 mm (AlignShift weights the shift by the thickness instead), slices
# resampled to 2 mm for thinner series; the thickness input is the native
# interval either way.
train_dataloader = dict(dataset=dict(slice_interval=2.0, native_if_thicker=True))
val_dataloader = dict(dataset=dict(slice_interval=2.0, native_if_thicker=True))
test_dataloader = dict(dataset=dict(slice_interval=2.0, native_if_thicker=True))
# 2 images per GPU, as published for AlignShift and TSM (lr stays 0.02, so
# its reference total batch is 4 GPUs x 2 images).
train_dataloader.update(batch_size=2)
auto_scale_lr = dict(base_batch_size=8)
