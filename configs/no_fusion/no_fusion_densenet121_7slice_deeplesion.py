# No fusion, 7 slices, DeepLesion (paper Table 2).
# Sec. 2.1 (a): 2D convolutions on every slice; the 3D context enters only
# through the D x 1 x 1 convolutions of the neck.
_base_ = './no_fusion_densenet121_3slice_deeplesion.py'

# D: the model and the data pipeline both read it from here.
num_slices = 7
model = dict(backbone=dict(num_slices=num_slices))
# interpolation='published' reproduces a bug on purpose: the published
# loader (every DeepLesion loader since 3DCE) reuses the first neighbour's
# interpolation weights for the outer neighbours (at 5 mm: -7, -2, -2, 0, 2,
# 2, 7 mm instead of -6 ... 6), and Table 2 was trained and tested on those
# inputs. 3-slice configs are the same either way.
train_dataloader = dict(dataset=dict(num_slices=num_slices, interpolation='published'))
val_dataloader = dict(dataset=dict(num_slices=num_slices, interpolation='published'))
test_dataloader = dict(dataset=dict(num_slices=num_slices, interpolation='published'))
