# TSM, 3 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (e): a fold of the channels shifted to the neighbouring slices
# before a 2D convolution (Lin et al., 2019).
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D = 3 is the bases' num_slices (model.backbone and the datasets).
model = dict(backbone=dict(fusion=dict(type='TSMConv')))
# 2 images per GPU, as published for TSM and AlignShift (lr stays 0.02, so
# its reference total batch is 4 GPUs x 2 images).
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(base_batch_size=8)
