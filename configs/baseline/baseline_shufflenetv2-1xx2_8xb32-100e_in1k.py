_base_ = ['../_base_/imagenet_baseline.py']
model = dict(
    peers=dict(members=[
        {{_base_.shufflenetv2_1x}},
        {{_base_.shufflenetv2_1x}},
    ]))
