_base_ = ['../_base_/models/ffl.py', '../_base_/mnist5k_cohort.py']
model = dict(
    peers=dict(classifier={{_base_.resnet20}}),
    teachers=dict(fusion=dict(target=dict(in_channels=[64, 64]))),
    # the references' 80 of 300 epochs, on 15
    loss_ramp=dict(length=4))
# the paper recipe's optimiser for the peers (weight decay 5e-4), FFL's
# weight decay 1e-5 for the fusion module
optim_wrapper = dict(
    cohort=dict(
        paramwise_cfg=dict(
            custom_keys={'teachers.fusion': dict(decay_mult=0.02)})))
