# Faster R-CNN with an MCL MobileNetV2 1.0x member (mmpretrain's
# `MobileNetV2`; mmdet's own MobileNetV2 names its layers differently)
# instead of ResNet-18; everything else as the R18 config.
_base_ = './faster-rcnn_r18-fpn_8xb2-1x_coco.py'

# No custom_imports: a `mmpretrain.X` type imports mmpretrain's registry
# and models by itself (mmpretrain is a child of MMEngine's root registry).

# mmpretrain MobileNetV2(widen_factor=1.0) `layers` 0-6 have 16 / 24 / 32 /
# 64 / 96 / 160 / 320 channels at strides 2 / 4 / 8 / 16 / 16 / 32 / 32,
# index 7 is the final 1x1 conv to 1280 channels at stride 32.
# out_indices (1, 2, 4, 7): 24 / 32 / 96 / 1280 channels at strides
# 4 / 8 / 16 / 32, the stock FPN strides; every weight of the member used.
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MobileNetV2',
        widen_factor=1.0,
        out_indices=(1, 2, 4, 7),
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(_scope_='mmmcl', type='Pretrained', checkpoint=None)),
    neck=dict(in_channels=[24, 32, 96, 1280]))
