_base_ = ['../_base_/models/ffl.py', '../_base_/mnist5k_cohort.py']
model = dict(
    peers=dict(classifier={{_base_.resnet20}}),
    teachers=dict(
        fusion=dict(target=dict(in_channels=[64, 64]))))
# FFL's fusion optimizer: weight decay 1e-5 (1/50 of the peers' 5e-4)
optim_wrapper = dict(
    cohort=dict(
        paramwise_cfg=dict(
            custom_keys={'teachers.fusion': dict(decay_mult=0.02)})))
