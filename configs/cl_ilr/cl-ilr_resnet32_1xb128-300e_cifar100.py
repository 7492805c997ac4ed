_base_ = ['../_base_/models/cl_ilr.py', '../_base_/cifar100_online_kd.py']
model = dict(
    # the reference's init loop leaves the classifiers at PyTorch's default
    head_init='reference',
    peers=dict(classifier={{_base_.resnet32}}))
