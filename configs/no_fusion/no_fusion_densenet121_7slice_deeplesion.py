# No fusion, 7 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (a): 2D convolutions on every slice; the 3D context enters only
# through the D x 1 x 1 convolutions of the neck.
_base_ = './no_fusion_densenet121_3slice_deeplesion.py'

# D: the model and the data pipeline both read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
