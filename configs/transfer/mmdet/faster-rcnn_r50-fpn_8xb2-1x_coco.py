# Faster R-CNN R50-FPN, COCO, 1x (8 GPUs x 2 images), the paper's setting
# (frozen_stages=1, norm_eval) for an MCL ResNet-50 member.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/models/mmdet_backbones.py'
]

model = dict(backbone={{_base_.det_resnet50}})
