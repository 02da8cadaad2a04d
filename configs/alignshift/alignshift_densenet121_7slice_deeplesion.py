# AlignShift, 7 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (f): a TSM shift weighted by the slice thickness (Yang et al.,
# MICCAI 2020); inputs are the native neighbouring slices (no 2 mm
# resampling), as in its official code.
_base_ = './alignshift_densenet121_3slice_deeplesion.py'

# D: the model and the data pipeline both read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices))
train_dataloader = dict(dataset=dict(num_slices=num_slices))
val_dataloader = dict(dataset=dict(num_slices=num_slices))
test_dataloader = dict(dataset=dict(num_slices=num_slices))
