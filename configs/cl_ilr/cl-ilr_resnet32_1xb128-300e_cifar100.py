_base_ = ['../_base_/models/cl_ilr.py', '../_base_/cifar100_online_kd.py']
model = dict(
    peers=dict(classifier={{_base_.resnet32}}))
