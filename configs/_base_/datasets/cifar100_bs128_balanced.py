# CIFAR-100 as L-MCL and MCL train it: 64 classes x 2 images per batch
# (everything else as cifar100_bs128.py).
_base_ = ['./cifar100_bs128.py']
train_dataloader = dict(
    batch_sampler=dict(type='ClassBalancedBatchSampler', num_per_class=2))
