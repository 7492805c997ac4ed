# Mask R-CNN R18-FPN, COCO, 1x (8 GPUs x 2 images): the paper's transfer
# setting, an MCL ResNet-18 member fine-tuned with frozen_stages=1 and
# norm_eval (the stock values, restated as the protocol).
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/models/mmdet_backbones.py'
]

model = dict(
    backbone={{_base_.det_resnet18}},
    neck=dict(in_channels=[64, 128, 256, 512]))
