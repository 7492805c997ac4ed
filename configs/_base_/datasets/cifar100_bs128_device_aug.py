# cifar100_bs128.py with the random crop (zero padding 4) and the horizontal
# flip moved from the CPU workers into the data preprocessor, for GPUs that
# the workers do not keep up with: mmmcl.RandomCropFlip crops and flips the
# whole normalised batch on the training device, with the distribution of
# the CPU transforms (and, for the same draw, the same images); the workers
# only pack and collate. Training batches only: test batches pass as they
# are. A leaf lists this base in place of cifar100_bs128.py (e.g. models/
# <method>.py, models/cifar_members.py, this, schedules/...,
# default_runtime.py). Multi-view leaves (KDCL, PCL) need no change: their
# MultiView of `train_transforms` (now none) repeats the image and
# `multiview_preprocessor` crops and flips each view on its own draw; the
# single-view `data_preprocessor` refuses a multi-view batch.
_base_ = ['./cifar100_bs128.py']
device_crop_flip = dict(
    type='mmmcl.RandomCropFlip',
    crop_size=32,
    padding=4,
    flip_prob=0.5,
    mean={{_base_.data_preprocessor.mean}},
    std={{_base_.data_preprocessor.std}})
data_preprocessor = dict(batch_augments=dict(augments=device_crop_flip))
multiview_preprocessor = dict(
    type='mmmcl.MultiViewDataPreprocessor', view_augment=device_crop_flip)
train_transforms = []
train_pipeline = [dict(type='mmpretrain.PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
