_base_ = ['./one_resnet32_1xb128-300e_cifar100.py']
# ONE's ResNet-110: 18 bottleneck blocks a stage, widths 64, 128, 256
model = dict(
    peers=dict(classifier={{_base_.resnet110_one}}),
    teachers=dict(ensemble=dict(target=dict(in_channels=128))))
