# ACS, 3 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (d): the 2D kernels split over the axial, coronal and sagittal
# views (Yang et al., 2021).
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D = 3 is the bases' num_slices (model.backbone and the datasets).
model = dict(backbone=dict(fusion=dict(type='ACSConv')))
