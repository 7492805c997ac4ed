_base_ = ['../_base_/models/lmcl.py', '../_base_/mnist5k-20pd_cohort.py']
# every distillation term ramped up over the first 80/300 of the 200 steps
model = dict(
    peers=dict(members=[{{_base_.resnet20}}, {{_base_.resnet20}}]),
    loss_ramp=dict(
        type='LossWeightRamp', shape='sigmoid', length=53, by_epoch=False))
