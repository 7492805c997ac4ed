_base_ = ['../_base_/models/independent.py', '../_base_/cifar100_cohort.py']
model = dict(peers=dict(members=[{{_base_.resnet32}}, {{_base_.resnet32}}]))
