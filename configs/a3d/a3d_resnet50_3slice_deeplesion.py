# A3D, 3 slices, DeepLesion, in a 3D ResNet-50 (layers 1-3, C2-C4) converted
# from torchvision's ResNet-50 by convert_2d_to_3d instead of the paper's
# DenseNet-121. Only the backbone differs from a3d_densenet121_3slice_deeplesion.py;
# the neck and heads take its channels (256, 512, 1024) and strides from it.
_base_ = './a3d_densenet121_3slice_deeplesion.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet3D',
        depth=50,
        num_slices=3,
        fusion=dict(type='A3DConv'),
        # ImageNet ResNet-50 (torchvision state_dict), converted to 3D.
        pretrained='checkpoints/resnet50.pth',
        norm_cfg=dict(type='BN3d')))  # SyncBN when distributed (the base's sync_bn)
