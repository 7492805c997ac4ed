_base_ = ['./kdcl_resnet32x2_1xb128-300e_cifar100.py']
# the bottleneck ResNet-110 of the reference (12 blocks a stage, widths 64,
# 128, 256)
model = dict(
    peers=dict(members=[{{_base_.resnet110}}, {{_base_.resnet110}}]))
