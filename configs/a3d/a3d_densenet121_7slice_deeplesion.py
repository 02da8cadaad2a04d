# A3D (the paper), 7 slices, DeepLesion (paper Table 2).
# Sec. 2.2: asymmetric 3D context fusion, a dense D x D linear fusion of the
# slices per channel, starting as identity + U(-0.1, 0.1).
_base_ = './a3d_densenet121_3slice_deeplesion.py'

# D: the model and the data pipeline both read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
