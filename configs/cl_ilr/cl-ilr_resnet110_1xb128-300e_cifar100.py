_base_ = ['./cl-ilr_resnet32_1xb128-300e_cifar100.py']
# the bottleneck ResNet-110 of the reference (12 blocks a stage, widths 64,
# 128, 256)
model = dict(
    peers=dict(classifier={{_base_.resnet110}}))
