# Faster R-CNN with an MCL ShuffleNetV2 1.0x member (mmpretrain's
# `ShuffleNetV2`, as the cohort configs build it) instead of ResNet-18;
# everything else as the R18 config.
_base_ = './faster-rcnn_r18-fpn_8xb2-1x_coco.py'

# No custom_imports: a `mmpretrain.X` type imports mmpretrain's registry
# and models by itself (mmpretrain is a child of MMEngine's root registry).

# Strides 8 / 16 / 32 (no stride-4 output): FPN adds two max-pooled levels
# (64, 128); anchor scale 4 on strides 8..128 keeps the stock anchor sizes
# 32..512.
model = dict(
    backbone={{_base_.det_shufflenet_v2}},
    neck=dict(in_channels=[116, 232, 1024], num_outs=5),
    rpn_head=dict(
        anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))
