_base_ = ['../_base_/models/cl_ilr.py', '../_base_/mnist5k_cohort.py']
model = dict(
    peers=dict(classifier={{_base_.resnet20}}))
