_base_ = ['../_base_/models/one.py', '../_base_/mnist5k_cohort.py']
model = dict(
    peers=dict(classifier={{_base_.resnet20}}),
    teachers=dict(
        ensemble=dict(target=dict(in_channels=32))),
    # the references' 80 of 300 epochs, on 15
    loss_ramp=dict(length=4))
