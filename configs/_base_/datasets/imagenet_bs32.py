# ImageNet-1k laid out the mmpretrain way under data/imagenet:
#   data/imagenet/train/<wnid>/*.JPEG, data/imagenet/val/<wnid>/*.JPEG
#   (or flat folders with meta/train.txt, meta/val.txt annotation files).
# 32 images per GPU (the paper: 8 GPUs x 32 = 256). As in the paper, the
# public val split is the test set; there is no model selection on it.
dataset_type = 'mmpretrain.ImageNet'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(type='mmpretrain.RandomResizedCrop', scale=224),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(type='mmpretrain.ResizeEdge', scale=256, edge='short'),
    dict(type='mmpretrain.CenterCrop', crop_size=224),
    dict(type='mmpretrain.PackInputs'),
]

imagenet_train = dict(
    type=dataset_type,
    data_root='data/imagenet',
    split='train',
    pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=32,
    num_workers=5,
    persistent_workers=True,
    dataset=imagenet_train,
    sampler=dict(type='DefaultSampler', shuffle=True))

val_dataloader = None
val_evaluator = None
val_cfg = None

test_dataloader = dict(
    batch_size=64,
    num_workers=5,
    dataset=dict(
        type=dataset_type,
        data_root='data/imagenet',
        split='val',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='CohortAccuracy', topk=(1, 5))
test_cfg = dict()
