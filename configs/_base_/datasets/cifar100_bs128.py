# CIFAR-100 with batches of 128 drawn uniformly (the online-KD references:
# ONE, CL-ILR, OKDDip, KDCL, PCL, FFL). Put the python version of CIFAR-100
# under data/cifar100 (mmpretrain's CIFAR100 layout). There is no val split
# in the papers' recipes: training
# uses all 50k images and tools/test.py reports the final checkpoint on the
# test split (no model selection on test).
dataset_type = 'mmpretrain.CIFAR100'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418],
    to_rgb=False)

# Multi-view methods (KDCL, PCL) wrap `train_transforms` in mmpretrain's
# MultiView and give the model `multiview_preprocessor`
# (cifar100_bs128_multiview.py).
train_transforms = [
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
]
train_pipeline = train_transforms + [dict(type='mmpretrain.PackInputs')]
multiview_preprocessor = dict(
    type='mmpretrain.SelfSupDataPreprocessor',
    mean=data_preprocessor['mean'],
    std=data_preprocessor['std'],
    to_rgb=False)
test_pipeline = [dict(type='mmpretrain.PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root='data/cifar100',
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))

val_dataloader = None
val_evaluator = None
val_cfg = None

test_dataloader = dict(
    batch_size=256,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root='data/cifar100',
        split='test',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='CohortAccuracy', topk=(1, 5))
test_cfg = dict()
