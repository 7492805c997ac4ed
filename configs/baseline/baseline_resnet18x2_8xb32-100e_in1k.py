_base_ = ['../_base_/imagenet_baseline.py']
model = dict(peers=dict(members=[{{_base_.resnet18}}, {{_base_.resnet18}}]))
