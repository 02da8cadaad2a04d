# Synthetic DeepLesion-format data at data/synthetic_deeplesion, generated on
# first use (SyntheticDeepLesionDataset; rank 0 generates, others wait).
# Same format and splits as DeepLesion; the pipeline is the paper's except
# the resize: images stay at their native size (128 px high, some 160 px
# wide), padded to a multiple of 32. A CPU-sized stand-in for the default
# config and the tests.
_base_ = './deeplesion.py'

dataset_type = 'SyntheticDeepLesionDataset'
data_root = 'data/synthetic_deeplesion'
# make_synthetic_deeplesion arguments; they are recorded in the folder and
# checked on reuse by the training set. Validation and test sets do not
# repeat them, so a held-out tree made with another seed
# (tools/dataset_converters/make_synthetic_deeplesion.py --seed K) can be
# evaluated with --cfg-options test_dataloader.dataset.data_root=DIR.
synthetic = dict(num_series=160, size=128, seed=0)

train_pipeline = [
    dict(type='LoadMultiSliceFromFile'),
    dict(type='LoadLesionAnnotations', with_mask=True),
    dict(type='WindowCT'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(type='RandomShiftScaleRotate', shift_limit=0.04, scale_limit=0.2,
         rotate_limit=15, prob=0.8),
    dict(type='PadCT', size_divisor=32),
    dict(type='PackLesionInputs'),
]
test_pipeline = [
    dict(type='LoadMultiSliceFromFile'),
    dict(type='LoadLesionAnnotations', with_mask=False),
    dict(type='WindowCT'),
    dict(type='PadCT', size_divisor=32),
    dict(type='PackLesionInputs'),
]

train_dataloader = dict(
    batch_size=2,
    # The generator writes DL_info.csv only (masks: the RECIST ellipses), not
    # the prepared GrabCut file the DeepLesion base trains on.
    dataset=dict(type=dataset_type, data_root=data_root, synthetic=synthetic,
                 ann_file='DL_info.csv', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    dataset=dict(type=dataset_type, data_root=data_root,
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=2,
    dataset=dict(type=dataset_type, data_root=data_root,
                 pipeline=test_pipeline))
