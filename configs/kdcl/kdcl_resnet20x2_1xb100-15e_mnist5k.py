_base_ = [
    '../_base_/models/kdcl.py', '../_base_/models/cifar_members.py',
    '../_base_/datasets/mnist5k_bs100_balanced_multiview.py',
    '../_base_/schedules/mnist5k_sgd_15e_warmup_cosine.py',
    '../_base_/default_runtime.py'
]
model = dict(
    peers=dict(members=[{{_base_.resnet20}}, {{_base_.resnet20}}]),
    num_classes=10,
    data_preprocessor={{_base_.multiview_preprocessor}})
