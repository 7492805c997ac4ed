# Faster R-CNN R18-FPN, COCO, 1x (8 GPUs x 2 images): the paper's transfer
# setting, an MCL ResNet-18 member fine-tuned with frozen_stages=1 and
# norm_eval (the stock values, restated as the protocol) on the stock 1x
# schedule. The export of an mmpretrain `ResNet` member (plain stem) loads
# into mmdet's `ResNet` as is.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

pretrained = None  # path of an mmmcl export, e.g. work_dirs/<cohort>/backbones/member0.pth  # noqa: E501

model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=1,
        norm_eval=True,
        # None: random init, replacing the base's torchvision://resnet50
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None),
    neck=dict(in_channels=[64, 128, 256, 512]))
