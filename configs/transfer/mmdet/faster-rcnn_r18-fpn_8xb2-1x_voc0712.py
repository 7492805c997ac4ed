# Faster R-CNN R18-FPN on Pascal VOC 07+12 trainval, tested on VOC07 test
# (8 GPUs x 2 images; 4 epochs of the 3x repeated set = 12 epochs) with an
# MCL ResNet-18 member, frozen_stages=1 and norm_eval as on COCO.
_base_ = [
    'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py',
    '../_base_/models/mmdet_backbones.py'
]

model = dict(
    backbone={{_base_.det_resnet18}},
    neck=dict(in_channels=[64, 128, 256, 512]))
