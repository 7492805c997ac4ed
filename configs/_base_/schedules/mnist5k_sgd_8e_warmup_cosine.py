# The regime study's schedule for few labels: the paper's optimiser, one
# warm-up epoch, then cosine to 0 over 7 more epochs (8 epochs of 25
# batches: 200 steps, each image of 20 a digit seen 20 times).
_base_ = ['./cifar100_sgd_300e_cosine.py']
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=8, T_max=7),
]
train_cfg = dict(by_epoch=True, max_epochs=8, val_interval=1)
auto_scale_lr = dict(base_batch_size=20)
