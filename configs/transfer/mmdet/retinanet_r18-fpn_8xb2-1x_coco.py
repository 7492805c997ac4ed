# RetinaNet R18-FPN, COCO, 1x (8 GPUs x 2 images) with an MCL ResNet-18
# member; the stock R18 config (frozen_stages=1, norm_eval, lr 0.01).
_base_ = [
    'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    '../_base_/models/member_init.py'
]

model = dict(backbone=dict(init_cfg={{_base_.member_init}}))
