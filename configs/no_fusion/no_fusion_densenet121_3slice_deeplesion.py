# No fusion, 3 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (a): 2D convolutions on every slice; the 3D context enters only
# through the D x 1 x 1 convolutions of the neck.
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D = 3 is the bases' num_slices (model.backbone and the datasets).
model = dict(backbone=dict(fusion=dict(type='NoFusionConv')))
