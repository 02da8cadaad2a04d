# A3D (the paper), 3 slices, DeepLesion (paper Table 2).
# Sec. 2.2: asymmetric 3D context fusion, a dense D x D linear fusion of the
# slices per channel, starting as identity + U(-0.1, 0.1).
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D: the model and the data pipeline read it from here.
num_slices = 3
model = dict(backbone=dict(num_slices=num_slices, fusion=dict(type='A3DConv')))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
