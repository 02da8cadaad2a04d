# I3D, 7 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (b): 3D convolutions inflated from the 2D kernels (Carreira and
# Zisserman, 2017).
_base_ = './i3d_densenet121_3slice_deeplesion.py'

# D: the model and the data pipeline both read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
