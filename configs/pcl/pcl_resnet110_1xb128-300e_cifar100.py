_base_ = ['./pcl_resnet32_1xb128-300e_cifar100.py']
# the bottleneck ResNet-110 of the reference (12 blocks a stage, widths 64,
# 128, 256)
model = dict(
    peers=dict(classifier={{_base_.resnet110}}),
    teachers=dict(ensemble=dict(target=dict(in_channels=[256] * 3))))
