# TSM, 7 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (e): a fold of the channels shifted to the neighbouring slices
# before a 2D convolution (Lin et al., 2019).
_base_ = './tsm_densenet121_3slice_deeplesion.py'

# D: the model and the data pipeline both read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
