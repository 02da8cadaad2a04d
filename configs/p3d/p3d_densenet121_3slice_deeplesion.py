# P3D, 3 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (c): a 2D in-plane convolution followed by a 1D convolution along
# depth (Qiu et al., 2017).
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D = 3 is the bases' num_slices (model.backbone and the datasets).
model = dict(backbone=dict(fusion=dict(type='P3DConv')))
