# AlignShift, 7 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (f): a TSM shift weighted by the slice thickness (Yang et al.,
# MICCAI 2020), with the published AlignShift settings (docs/reproduction.md).
_base_ = './alignshift_densenet121_3slice_deeplesion.py'

# D: the model and the data pipeline both read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices))
# interpolation='published' reproduces a bug on purpose: the published
# loader reuses the first neighbour's interpolation weights for the outer
# neighbours of series thinner than 2 mm (at 1.25 mm: -5.75, -4.5, -2, 0, 2,
# 4.5, 5.75 mm instead of -6 ... 6), and Table 2 was trained and tested on
# those inputs. Series >= 2 mm are read natively (no interpolation at all).
train_dataloader = dict(dataset=dict(num_slices=num_slices, interpolation='published'))
val_dataloader = dict(dataset=dict(num_slices=num_slices, interpolation='published'))
test_dataloader = dict(dataset=dict(num_slices=num_slices, interpolation='published'))
