# The universal lesion detector of the A3D paper (Sec. 2.3, Fig. 2): a 3D
# DenseNet-121 with a 3D context fusion operator, a 3D-to-2D FPN and Mask
# R-CNN heads, with every setting of the official A3D configuration (see
# docs/reproduction.md) as the default.
#
# Leaf configs change only the operator (model.backbone.fusion.type) and the
# slice count. The bases use 3 slices (model.backbone.num_slices here and the
# datasets' num_slices, which fills the pipeline's LoadMultiSliceFromFile),
# so the 3-slice leaves set nothing more; the 7-slice leaves set a top-level
# `num_slices = 7` and pass it to the backbone and to all three datasets. The
# detector refuses inputs whose slice count differs from the model's.
model = dict(
    type='LesionMaskRCNN',
    # Stacks (1, D, H, W) inputs into (B, 1, D, H, W), padding H and W only.
    data_preprocessor=dict(type='LesionDataPreprocessor', pad_size_divisor=32),
    backbone=dict(
        type='DenseNet3D',
        num_slices=3,
        fusion=dict(type='A3DConv'),
        # ImageNet DenseNet-121 (torchvision state_dict), converted to 3D.
        pretrained='checkpoints/densenet121.pth',
        memory_efficient=False,
        norm_cfg=dict(type='BN3d')),  # SyncBN when distributed (sync_bn below)
    # D x 1 x 1 squeeze, 1 x 1 lateral to 512 ("feature channels 512"), top-down.
    neck=dict(type='FPN3Dto2D', out_channels=512),
    rpn_head=dict(
        type='LesionRPNHead',
        # One level at stride 4: base size 4 x scales (4, 6, 8, 12, 24, 48).
        # center_offset=0.5: anchor centres at (i + 0.5) * stride, the
        # published (mmdet v1) anchors; torchvision's are at i * stride.
        anchor_generator=dict(type='CenterOffsetAnchorGenerator',
                              sizes=((16, 24, 32, 48, 96, 192),),
                              aspect_ratios=((0.5, 1.0, 2.0),),
                              center_offset=0.5),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        # A lesion's best anchor is positive only at IoU >= 0.3, and anchors
        # crossing the input's border are ignored in training (the published
        # mmdet v1 RPN: min_pos_iou=0.3, allowed_border=0).
        min_pos_iou=0.3,
        allowed_border=0,
        batch_size_per_image=32,
        positive_fraction=0.5,
        # Published: 12000 proposals before NMS 0.7 and 2000 after in
        # training; 6000 and 300 in testing.
        pre_nms_top_n=dict(training=12000, testing=6000),
        post_nms_top_n=dict(training=2000, testing=300),
        nms_thresh=0.7),
    roi_head=dict(
        type='LesionRoIHead',
        bbox_roi_extractor=dict(type='RoIAlign', output_size=7, sampling_ratio=2,
                                aligned=False),
        bbox_head=dict(
            type='SharedFCBBoxHead',
            num_fcs=2,
            fc_out_channels=2048,
            num_classes=1,
            loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        mask_roi_extractor=dict(type='RoIAlign', output_size=14, sampling_ratio=2,
                                aligned=False),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            conv_out_channels=256,
            num_classes=1,
            # Dice smoothing 0.01 as published (deeplesion/losses/diceloss.py).
            loss_mask=dict(type='DiceLoss', eps=0.01, loss_weight=1.0)),
        proposal_matcher=dict(type='Matcher', high_threshold=0.5, low_threshold=0.5,
                              allow_low_quality_matches=False),
        sampler=dict(type='BalancedPositiveNegativeSampler', batch_size_per_image=64,
                     positive_fraction=0.25),
        # Weights are 1 / target stds (0.1, 0.1, 0.2, 0.2).
        box_coder=dict(type='BoxCoder', weights=(10.0, 10.0, 5.0, 5.0)),
        add_gt_as_proposals=True,
        score_thr=5e-5,
        nms_iou=0.5,
        max_per_img=50,
        mask_thr=0.5))

# Synchronized BN in the backbone (mmengine converts BN to SyncBN when
# training distributed and reverts it on one process).
sync_bn = 'torch'
