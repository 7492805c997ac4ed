# Member backbones for mmseg's models: model = dict(pretrained=None,
# backbone={{_base_.X}}), `pretrained` being the segmentor's own key for
# the stock weights (off).
_base_ = ['./member_init.py']
# mmseg's `ResNet` (plain stem) where the stock config has a ResNetV1c
# (deep stem: voc12aug, ade20k), as mmseg's Cityscapes `r18b` / `r50b`
# configs have it.
seg_resnet50 = dict(type='ResNet', init_cfg={{_base_.member_init}})
seg_resnet18 = dict(seg_resnet50, depth=18)
# mmmcl's CIFAR ResNet-20 (`mmmcl.CifarResNet` does not resolve from
# mmseg's registry: the scope instead): stages of 16 / 32 / 64 channels at
# strides 1 / 2 / 4, so no dilation is needed.
seg_cifar_resnet20 = dict(
    _delete_=True,
    _scope_='mmmcl',
    type='CifarResNet',
    depth=20,
    out_indices=(0, 1, 2),
    init_cfg={{_base_.member_init}})
# mmpretrain's MobileNetV2, as the cohort builds it (mmseg's own lacks its
# final 1x1 conv, so an export does not load strictly into it); see
# mmdet_backbones.py for its outputs. SyncBN, as the heads.
seg_mobilenet_v2 = dict(
    _delete_=True,
    type='mmpretrain.MobileNetV2',
    widen_factor=1.0,
    out_indices=(1, 2, 4, 7),
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    init_cfg={{_base_.member_init}})
