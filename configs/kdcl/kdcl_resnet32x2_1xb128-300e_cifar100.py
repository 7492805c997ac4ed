_base_ = [
    '../_base_/models/kdcl.py', '../_base_/models/cifar_members.py',
    '../_base_/datasets/cifar100_bs128_multiview.py',
    '../_base_/schedules/cifar100_sgd_300e_cosine.py',
    '../_base_/default_runtime.py'
]
model = dict(
    peers=dict(members=[{{_base_.resnet32}}, {{_base_.resnet32}}]),
    num_classes=100,
    data_preprocessor={{_base_.multiview_preprocessor}})
