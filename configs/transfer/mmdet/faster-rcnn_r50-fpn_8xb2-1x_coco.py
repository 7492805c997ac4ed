# Faster R-CNN R50-FPN, COCO, 1x (8 GPUs x 2 images), the paper's setting
# (frozen_stages=1, norm_eval) for an MCL ResNet-50 member.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

pretrained = None  # path of an mmmcl export, e.g. work_dirs/<cohort>/backbones/member0.pth  # noqa: E501

model = dict(
    backbone=dict(
        frozen_stages=1,
        norm_eval=True,
        # None: random init, replacing the base's torchvision://resnet50
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None))
