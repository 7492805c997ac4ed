# FCN with a plain-stem ResNet-18 (dilated, output stride 8), ADE20K 512x512,
# 80k iterations (4 GPUs x 4 images), with an MCL ResNet-18 member. The stock
# ade20k configs use ResNetV1c (deep stem): the backbone type and the R18 head
# widths are overridden as mmseg's Cityscapes `r18b` configs do.
_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py',
    '../_base_/models/mmseg_backbones.py'
]

model = dict(
    pretrained=None,  # the segmentor's own key (stock: open-mmlab://): off
    backbone={{_base_.seg_resnet18}},
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
