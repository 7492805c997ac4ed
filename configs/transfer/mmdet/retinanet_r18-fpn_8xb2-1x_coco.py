# RetinaNet R18-FPN, COCO, 1x (8 GPUs x 2 images) with an MCL ResNet-18
# member; the stock R18 config (frozen_stages=1, norm_eval, lr 0.01).
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'

pretrained = None  # path of an mmmcl export, e.g. work_dirs/<cohort>/backbones/member0.pth  # noqa: E501

model = dict(
    backbone=dict(
        # None: random init, replacing the base's torchvision://resnet18
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None))
