_base_ = ['./ffl_resnet32_1xb128-300e_cifar100.py']
# the bottleneck ResNet-110 of the reference (widths 64, 128, 256)
model = dict(
    peers=dict(classifier={{_base_.resnet110}}),
    teachers=dict(fusion=dict(target=dict(in_channels=[256, 256]))))
