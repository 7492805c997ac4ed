_base_ = ['../_base_/models/lmcl_imagenet.py', '../_base_/imagenet_cohort.py']
model = dict(
    peers=dict(members=[
        {{_base_.shufflenetv2_1x}},
        {{_base_.shufflenetv2_1x}},
    ]))
