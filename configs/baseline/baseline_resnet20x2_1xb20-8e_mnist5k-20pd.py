_base_ = [
    '../_base_/models/independent.py', '../_base_/mnist5k-20pd_cohort.py'
]
model = dict(peers=dict(members=[{{_base_.resnet20}}, {{_base_.resnet20}}]))
