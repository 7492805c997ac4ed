# Faster R-CNN with an MCL MobileNetV2 1.0x member (mmpretrain's
# `MobileNetV2`; mmdet's own MobileNetV2 names its layers differently)
# instead of ResNet-18; everything else as the R18 config.
_base_ = './faster-rcnn_r18-fpn_8xb2-1x_coco.py'

# No custom_imports: a `mmpretrain.X` type imports mmpretrain's registry
# and models by itself (mmpretrain is a child of MMEngine's root registry).

# Strides 4 / 8 / 16 / 32, the stock FPN strides.
model = dict(
    backbone={{_base_.det_mobilenet_v2}},
    neck=dict(in_channels=[24, 32, 96, 1280]))
