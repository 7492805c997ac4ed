_base_ = ['../_base_/models/okddip.py', '../_base_/cifar100_online_kd_step.py']
model = dict(
    # the reference's init loop leaves the classifiers at PyTorch's default
    head_init='reference',
    peers=dict(classifier={{_base_.resnet32}}),
    teachers=dict(
        attention=dict(target=dict(in_channels=64))))
