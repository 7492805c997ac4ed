_base_ = ['../_base_/models/ffl.py', '../_base_/cifar100_cohort.py']
model = dict(
    peers=dict(classifier={{_base_.resnet32}}),
    teachers=dict(
        fusion=dict(target=dict(in_channels=[64, 64]))))
# FFL's optimisers (train_FFL.py): the peers' weight decay 1e-4, the fusion
# module's 1e-5 (a parameter group: the same lr schedule), lr x0.1 at epochs
# 150 and 225
optim_wrapper = dict(
    cohort=dict(
        optimizer=dict(weight_decay=1e-4),
        paramwise_cfg=dict(
            custom_keys={'teachers.fusion': dict(decay_mult=0.1)})))
param_scheduler = dict(
    _delete_=True,
    type='MultiStepLR',
    by_epoch=True,
    milestones=[150, 225],
    gamma=0.1)
