_base_ = ['../_base_/models/lmcl_imagenet.py', '../_base_/imagenet_cohort.py']
model = dict(peers=dict(members=[{{_base_.resnet50}}, {{_base_.resnet50}}]))
