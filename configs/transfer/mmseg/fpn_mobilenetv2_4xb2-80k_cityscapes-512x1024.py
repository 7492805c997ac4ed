# Semantic FPN with an MCL MobileNetV2 1.0x member (mmpretrain's
# `MobileNetV2`, as the cohort builds it: mmseg's own MobileNetV2 lacks its
# final 1x1 conv, so an export does not load strictly into it), Cityscapes
# 512x1024, 80k iterations (4 GPUs x 2 images). mmpretrain's MobileNetV2
# has no dilation (output stride 32), so its multi-scale outputs feed an
# FPN instead of a dilated FCN / DeepLabV3 head.
_base_ = [
    'mmseg::sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/models/mmseg_backbones.py'
]

# Strides 4 / 8 / 16 / 32, the FPN head's feature_strides.
model = dict(
    pretrained=None,  # the segmentor's own key (stock: open-mmlab://): off
    backbone={{_base_.seg_mobilenet_v2}},
    neck=dict(in_channels=[24, 32, 96, 1280]))
