# DeepLabV3 with a plain-stem ResNet-18 (dilated, output stride 8), Pascal VOC
# 2012 + SBD aug 512x512, 40k iterations (4 GPUs x 4 images), with an MCL
# ResNet-18 member. The stock voc12aug configs use ResNetV1c (deep stem): the
# backbone type and the R18 head widths are overridden as mmseg's Cityscapes
# `r18b` configs do.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-40k_voc12aug-512x512.py',
    '../_base_/models/mmseg_backbones.py'
]

model = dict(
    pretrained=None,  # the segmentor's own key (stock: open-mmlab://): off
    backbone={{_base_.seg_resnet18}},
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
