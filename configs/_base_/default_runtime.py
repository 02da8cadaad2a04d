# Runtime shared by every config: registry scope, hooks, logging, environment.
default_scope = 'a3d_det'  # build types by name from a3d_det's registries

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # Console progress (loss, lr, time, ETA) every 50 iterations.
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Checkpoints are written to a temporary file and renamed into place
    # (a3d_det.engine.AtomicCheckpointHook): a crash never leaves a partial one.
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Training skips a sample whose slices cannot be read (the dataset's
    # max_skipped_fraction limits how many); this hook counts them over all
    # loader workers, logs the count each epoch and validation, and stops
    # training above the limit.
    skipped_samples=dict(type='SkippedSamplesHook'),
)

env_cfg = dict(
    # cuDNN times its algorithms once per input shape and keeps the fastest:
    # CT inputs are padded to a fixed size (512 x 512 for DeepLesion), so the
    # search runs once. Set False for data of many different sizes.
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # NCCL on GPUs. On a machine without CUDA, tools/train.py and
    # tools/test.py (a3d_det.engine.setup_distributed) switch to gloo.
    dist_cfg=dict(backend='nccl'),
)

# TensorBoard curves and JSON scalars under <work_dir>/<timestamp>/vis_data.
vis_backends = [dict(type='LocalVisBackend'),
                dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends,
                  name='visualizer')

log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
