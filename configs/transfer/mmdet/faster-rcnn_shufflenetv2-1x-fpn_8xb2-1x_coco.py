# Faster R-CNN with an MCL ShuffleNetV2 1.0x member (mmpretrain's
# `ShuffleNetV2`, as the cohort configs build it) instead of ResNet-18;
# everything else as the R18 config.
_base_ = './faster-rcnn_r18-fpn_8xb2-1x_coco.py'

# No custom_imports: a `mmpretrain.X` type imports mmpretrain's registry
# and models by itself (mmpretrain is a child of MMEngine's root registry).

# mmpretrain ShuffleNetV2(widen_factor=1.0) (`layers` 0-2: the three stages
# with 116 / 232 / 464 channels at strides 8 / 16 / 32; index 3: the final
# 1x1 conv to 1024 channels, also at stride 32; it has no stride-4 output).
# out_indices (0, 1, 3): strides 8 / 16 / 32, every weight of the member
# used (index 2 feeds index 3). FPN adds two max-pooled levels (64, 128);
# anchor scale 4 on strides 8..128 keeps the stock anchor sizes 32..512.
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ShuffleNetV2',
        widen_factor=1.0,
        out_indices=(0, 1, 3),
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(_scope_='mmmcl', type='Pretrained', checkpoint=None)),
    neck=dict(in_channels=[116, 232, 1024], num_outs=5),
    rpn_head=dict(
        anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))
