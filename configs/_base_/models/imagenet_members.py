# Cohort members for ImageNet (224x224), mmpretrain backbones by registry
# name. out_indices list all 4 stages: L-MCL's auxiliary branches start at
# the first three (MCL and baselines use only the last).
_neck = dict(type='mmpretrain.GlobalAveragePooling')


def _member(backbone: dict, width: int) -> dict:
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=backbone,
        neck=_neck,
        head=dict(
            type='mmpretrain.LinearClsHead',
            in_channels=width,
            loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))


resnet18 = _member(
    dict(type='mmpretrain.ResNet', depth=18, out_indices=(0, 1, 2, 3)), 512)
resnet34 = _member(
    dict(type='mmpretrain.ResNet', depth=34, out_indices=(0, 1, 2, 3)), 512)
resnet50 = _member(
    dict(type='mmpretrain.ResNet', depth=50, out_indices=(0, 1, 2, 3)), 2048)
shufflenetv2_1x = _member(
    dict(
        type='mmpretrain.ShuffleNetV2',
        widen_factor=1.0,
        out_indices=(0, 1, 2, 3)), 1024)
