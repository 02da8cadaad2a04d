# ACS, 7 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (d): the 2D kernels split over the axial, coronal and sagittal
# views (Yang et al., 2021).
_base_ = './acs_densenet121_3slice_deeplesion.py'

# D: the model and the data pipeline both read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
