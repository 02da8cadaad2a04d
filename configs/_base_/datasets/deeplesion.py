# DeepLesion (NIH) at data/DeepLesion: Images_png/ and DL_info.csv (see
# docs/data.md), with the paper's pipeline (Sec. 3.1): slices resampled to
# 2 mm, HU window [-1024, 2050] -> [-50, 205], random horizontal flip,
# shift/scale/rotate, resize to 512, padding to a multiple of 32. The official
# 70/15/15 split (Train_Val_Test), one key image per sample, 1 image per GPU
# (the paper: 4 GPUs x 1 image).
#
# The slice count lives in the dataset (`num_slices`), which fills it into
# LoadMultiSliceFromFile; a 7-slice leaf sets
#   train_dataloader = dict(dataset=dict(num_slices=7)) (and val/test alike).
# Masks: training uses the paper's GrabCut weak masks (Sec. 3.1), made once by
#   python tools/dataset_converters/prepare_deeplesion.py --data-root data/DeepLesion
# into data/DeepLesion/annotations/deeplesion_{train,val,test}.json. Without
# that step, train on DL_info.csv, whose masks are the ellipses through the
# RECIST axes:
#   --cfg-options train_dataloader.dataset.ann_file=DL_info.csv
# Validation and testing score boxes only and read DL_info.csv directly.
dataset_type = 'DeepLesionDataset'
data_root = 'data/DeepLesion'
num_slices = 3

train_pipeline = [
    dict(type='LoadMultiSliceFromFile'),  # num_slices, 2 mm from the dataset
    dict(type='LoadLesionAnnotations', with_mask=True),
    dict(type='WindowCT'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    # As published (albumentations ShiftScaleRotate): bicubic image, reflect-101
    # border for image and masks, boxes = envelope of the 4 rotated corners.
    dict(type='RandomShiftScaleRotate', shift_limit=0.04, scale_limit=0.2,
         rotate_limit=15, prob=0.8, interpolation='bicubic',
         border_mode='reflect101', box_mode='corners'),
    dict(type='ResizeCT', size=512),
    dict(type='PadCT', size_divisor=32),
    dict(type='PackLesionInputs'),
]
test_pipeline = [
    dict(type='LoadMultiSliceFromFile'),
    dict(type='LoadLesionAnnotations', with_mask=False),
    dict(type='WindowCT'),
    dict(type='ResizeCT', size=512),
    dict(type='PadCT', size_divisor=32),
    dict(type='PackLesionInputs'),
]

# pin_memory: page-locked batches, copied to the GPU without blocking
# (LesionDataPreprocessor non_blocking=True).
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/deeplesion_train.json',
        split='train',
        num_slices=num_slices,
        slice_interval=2.0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    pin_memory=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='DL_info.csv',
        split='val',
        num_slices=num_slices,
        slice_interval=2.0,
        test_mode=True,
        pipeline=test_pipeline))
# The same, on the test split.
test_dataloader = dict(val_dataloader,
                       dataset=dict(val_dataloader['dataset'], split='test'))

# Sensitivity at 0.5 ... 16 false positives per image (IoU >= 0.5), the
# paper's Table 2; the test adds the breakdowns by slice interval, size, type.
val_evaluator = dict(type='DeepLesionFROCMetric')
test_evaluator = dict(type='DeepLesionFROCMetric',
                      breakdowns=('slice_interval', 'size', 'type'))
