# No fusion, 7 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (a): 2D convolutions on every slice; the 3D context enters only
# through the D x 1 x 1 convolutions of the neck.
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D: the model and the data pipeline read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices, fusion=dict(type='NoFusionConv')))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
