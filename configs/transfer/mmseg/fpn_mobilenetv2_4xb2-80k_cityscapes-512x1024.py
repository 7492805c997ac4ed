# Semantic FPN with an MCL MobileNetV2 1.0x member (mmpretrain's
# `MobileNetV2`, as the cohort builds it: mmseg's own MobileNetV2 lacks its
# final 1x1 conv, so an export does not load strictly into it), Cityscapes
# 512x1024, 80k iterations (4 GPUs x 2 images). mmpretrain's MobileNetV2
# has no dilation (output stride 32), so its multi-scale outputs feed an
# FPN instead of a dilated FCN / DeepLabV3 head.
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py'

# mmpretrain MobileNetV2(widen_factor=1.0) `layers` 0-6 have 16 / 24 / 32 /
# 64 / 96 / 160 / 320 channels at strides 2 / 4 / 8 / 16 / 16 / 32 / 32,
# index 7 is the final 1x1 conv to 1280 channels at stride 32.
# out_indices (1, 2, 4, 7): 24 / 32 / 96 / 1280 channels at strides
# 4 / 8 / 16 / 32, the FPN head's feature_strides; every weight used.
model = dict(
    pretrained=None,  # the segmentor's own key (stock: open-mmlab://): off
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MobileNetV2',
        widen_factor=1.0,
        out_indices=(1, 2, 4, 7),
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # as the heads
        init_cfg=dict(_scope_='mmmcl', type='Pretrained', checkpoint=None)),
    neck=dict(in_channels=[24, 32, 96, 1280]))
