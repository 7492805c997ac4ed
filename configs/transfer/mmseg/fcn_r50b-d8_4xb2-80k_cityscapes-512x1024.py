# FCN with a plain-stem ResNet-50 (dilated, output stride 8), Cityscapes
# 512x1024, 80k iterations (4 GPUs x 2 images): the stock `r50b` config
# with an MCL ResNet-50 member instead of torchvision's weights.
_base_ = [
    'mmseg::fcn/fcn_r50b-d8_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/models/member_init.py'
]

model = dict(
    pretrained=None,  # the segmentor's own key (stock: torchvision://): off
    backbone=dict(init_cfg={{_base_.member_init}}))
