# Member backbones for mmdet's models: model = dict(backbone={{_base_.X}}).
# All keep the paper's detection protocol (mmdet's stock values, restated):
# stage 1 frozen, BN in eval mode.
_base_ = ['./member_init.py']
_protocol = dict(
    frozen_stages=1, norm_eval=True, init_cfg={{_base_.member_init}})
# mmdet's `ResNet` (plain stem): the export of an mmpretrain `ResNet` member
# loads into it as is.
det_resnet50 = _protocol
det_resnet18 = dict(_protocol, depth=18)
# Other backbones in place of the stock ResNet (`_delete_`: none of its
# keys apply). mmpretrain's MobileNetV2 (mmdet's names its layers
# otherwise) `layers` 0-6 have 16 / 24 / 32 / 64 / 96 / 160 / 320 channels
# at strides 2 / 4 / 8 / 16 / 16 / 32 / 32, index 7 is the final 1x1 conv
# to 1280 channels at stride 32; out_indices (1, 2, 4, 7): 24 / 32 / 96 /
# 1280 channels at strides 4 / 8 / 16 / 32, every weight of the member used.
det_mobilenet_v2 = dict(
    _protocol,
    _delete_=True,
    type='mmpretrain.MobileNetV2',
    widen_factor=1.0,
    out_indices=(1, 2, 4, 7))
# mmpretrain's ShuffleNetV2, as the cohort configs build it: `layers` 0-2,
# the three stages with 116 / 232 / 464 channels at strides 8 / 16 / 32;
# index 3, the final 1x1 conv to 1024 channels, also at stride 32; no
# stride-4 output. out_indices (0, 1, 3): strides 8 / 16 / 32, every weight
# used (index 2 feeds index 3).
det_shufflenet_v2 = dict(
    _protocol,
    _delete_=True,
    type='mmpretrain.ShuffleNetV2',
    widen_factor=1.0,
    out_indices=(0, 1, 3))
# mmmcl's CIFAR ResNet-20 (`mmmcl.CifarResNet` does not resolve from
# mmdet's registry: the scope instead): stages of 16 / 32 / 64 channels at
# strides 1 / 2 / 4.
det_cifar_resnet20 = dict(
    _protocol,
    _delete_=True,
    _scope_='mmmcl',
    type='CifarResNet',
    depth=20,
    out_indices=(0, 1, 2))
