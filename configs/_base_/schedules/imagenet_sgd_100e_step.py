# The paper's ImageNet recipe: SGD lr 0.1, momentum 0.9, Nesterov, wd 1e-4,
# x0.1 at epochs 30, 60 and 90 of 100, batch 256. `meta` (the L-MCL
# meta-network phi) follows the same schedule.
_base_ = ['./cifar100_sgd_300e_cosine.py']
_sgd = dict(
    type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
optim_wrapper = dict(
    cohort=dict(optimizer=_sgd), meta=dict(optimizer=_sgd))
param_scheduler = dict(
    _delete_=True,
    type='MultiStepLR',
    by_epoch=True,
    milestones=[30, 60, 90],
    gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100)
auto_scale_lr = dict(base_batch_size=256)
