# A3D (the paper), 3 slices, DeepLesion (paper Table 2).
# Sec. 2.2: asymmetric 3D context fusion, a dense D x D linear fusion of the
# slices per channel, starting as identity + U(-0.1, 0.1).
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D = 3 is the bases' num_slices (model.backbone and the datasets).
model = dict(backbone=dict(fusion=dict(type='A3DConv')))
