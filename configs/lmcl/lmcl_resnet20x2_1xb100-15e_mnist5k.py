_base_ = ['../_base_/models/lmcl.py', '../_base_/mnist5k_cohort.py']
model = dict(peers=dict(members=[{{_base_.resnet20}}, {{_base_.resnet20}}]))
