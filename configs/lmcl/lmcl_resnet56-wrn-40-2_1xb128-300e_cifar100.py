_base_ = ['../_base_/models/lmcl_as_reference.py', '../_base_/cifar100_cohort.py']
model = dict(peers=dict(members=[{{_base_.resnet56}}, {{_base_.wrn_40_2}}]))
