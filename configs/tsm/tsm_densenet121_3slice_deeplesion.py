# TSM, 3 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (e): a fold of the channels shifted to the neighbouring slices
# before a 2D convolution (Lin et al., 2019).
_base_ = [
    '../_base_/models/mask_rcnn_densenet3d.py',
    '../_base_/datasets/deeplesion.py',
    '../_base_/schedules/schedule_20e.py',
    '../_base_/default_runtime.py',
]

# D: the model and the data pipeline read it from here.
num_slices = 3
model = dict(backbone=dict(num_slices=num_slices, fusion=dict(type='TSMConv')))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
