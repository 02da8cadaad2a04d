# The paper's schedule (Sec. 3 and the official A3D configuration):
# SGD lr 0.02 for 4 GPUs x 1 image, momentum 0.9, weight decay 1e-4,
# gradient clipping at norm 35, linear warm-up over 500 iterations from
# lr / 100 (the published warmup_ratio 0.01),
# 20 epochs with the learning rate divided by 10 after epochs 9 and 16.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=20,
         milestones=[9, 16], gamma=0.1),
]

# lr 0.02 is for a total batch of 4 (4 GPUs x 1 image). With
# `--cfg-options auto_scale_lr.enable=True` mmengine scales it linearly to
# the actual total batch size.
auto_scale_lr = dict(base_batch_size=4, enable=False)
