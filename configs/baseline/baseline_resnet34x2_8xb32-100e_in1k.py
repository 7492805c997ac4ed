_base_ = ['../_base_/imagenet_baseline.py']
model = dict(members=[{{_base_.resnet34}}, {{_base_.resnet34}}])
