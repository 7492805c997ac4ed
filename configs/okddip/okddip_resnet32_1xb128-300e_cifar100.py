_base_ = ['../_base_/models/okddip.py', '../_base_/cifar100_online_kd_step.py']
model = dict(
    peers=dict(classifier={{_base_.resnet32}}),
    teachers=dict(
        attention=dict(target=dict(in_channels=64))))
