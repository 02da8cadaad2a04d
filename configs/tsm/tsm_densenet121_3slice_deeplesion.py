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
