# The paper's CIFAR recipe: SGD lr 0.1, momentum 0.9, Nesterov, wd 5e-4,
# cosine per epoch over 300 epochs, no warm-up. `meta` (the L-MCL
# meta-network phi) is used only by models that have one and follows the
# same schedule.
_sgd = dict(
    type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
optim_wrapper = dict(
    constructor='CohortOptimWrapperConstructor',
    cohort=dict(type='OptimWrapper', optimizer=_sgd),
    meta=dict(type='OptimWrapper', optimizer=_sgd))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=300, eta_min=0.)
train_cfg = dict(by_epoch=True, max_epochs=300)
auto_scale_lr = dict(base_batch_size=128)
