# A short CPU schedule for the embedded data: the paper's optimiser, but
# one warm-up epoch (lr 0.1 from the first step leaves the final-stage
# classifiers at chance on this data, see docs) and 15 epochs.
_base_ = ['./cifar100_sgd_300e_cosine.py']
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, T_max=14),
]
train_cfg = dict(by_epoch=True, max_epochs=15, val_interval=1)
auto_scale_lr = dict(base_batch_size=100)
