# Mask R-CNN R50-FPN, COCO, 1x (8 GPUs x 2 images), the paper's setting
# (frozen_stages=1, norm_eval) for an MCL ResNet-50 member.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        frozen_stages=1,
        norm_eval=True,
        # mmmcl's strict loader (replaces the base's torchvision://resnet50)
        init_cfg=dict(_scope_='mmmcl', type='Pretrained', checkpoint=None)))
