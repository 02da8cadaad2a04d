# A3D (3 slices) in a 3D ResNet-18 (layers 1-3 of torchvision's ResNet-18,
# converted by convert_2d_to_3d) instead of DenseNet-121, trained from random
# initialisation on the synthetic DeepLesion-format data on 2 CPU cores.
# The DenseNet synthetic default's recipe (GroupNorm, AdamW, soft-tissue
# window, narrow neck and heads) and schedule (1000 iterations, warm-up over
# the first 50; its held-out FROC: configs/a3d/README.md).
#
#   python tools/train.py configs/a3d/a3d_resnet18_3slice_synthetic.py
_base_ = './a3d_densenet121_3slice_synthetic.py'

model = dict(
    backbone=dict(_delete_=True, type='ResNet3D', depth=18, num_slices={{_base_.num_slices}},
                  fusion=dict(type='A3DConv'), pretrained=None,
                  norm_cfg=dict(type='GN', num_groups=32)))

