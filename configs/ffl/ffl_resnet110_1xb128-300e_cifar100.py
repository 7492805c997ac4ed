_base_ = ['./ffl_resnet32_1xb128-300e_cifar100.py']
# FFL's ResNet-110: 18 basic blocks a stage, widths 16, 32, 64, and the
# 64-channel fusion module of ResNet-32
model = dict(peers=dict(classifier={{_base_.resnet110_basic}}))
