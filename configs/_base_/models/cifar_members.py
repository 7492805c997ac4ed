# Cohort members for 32x32 inputs; the cohort config sets num_classes.
# out_indices list every stage: the auxiliary branches of L-MCL start at
# all but the last (MCL, DML and baselines use only the last).
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


resnet20 = _member(dict(type='CifarResNet', depth=20, out_indices=(0, 1, 2)),
                   64)
resnet32 = _member(dict(type='CifarResNet', depth=32, out_indices=(0, 1, 2)),
                   64)
resnet56 = _member(dict(type='CifarResNet', depth=56, out_indices=(0, 1, 2)),
                   64)
# The authors' ResNet-110 (their published numbers) uses bottleneck blocks:
# 12 a stage (9n + 2), as MCL-OKD's re-implementations of the zoo.
resnet110 = _member(
    dict(
        type='CifarResNet',
        depth=110,
        block='bottleneck',
        out_indices=(0, 1, 2)), 256)
# What ONE's code builds for --depth 110: 18 bottleneck blocks a stage
# (Lan1991Xu/ONE_NeurIPS2018, models/cifar/resnet.py), i.e. 164 layers.
resnet110_one = _member(
    dict(
        type='CifarResNet',
        depth=164,
        block='bottleneck',
        out_indices=(0, 1, 2)), 256)
# What FFL's code builds for depth 110: 18 basic blocks a stage, widths 16,
# 32, 64 (Jangho-Kim/FFL-pytorch, our_network.py).
resnet110_basic = _member(
    dict(type='CifarResNet', depth=110, out_indices=(0, 1, 2)), 64)
wrn_16_2 = _member(
    dict(type='CifarWideResNet', depth=16, widen_factor=2,
         out_indices=(0, 1, 2)), 128)
wrn_40_2 = _member(
    dict(type='CifarWideResNet', depth=40, widen_factor=2,
         out_indices=(0, 1, 2)), 128)
shufflenetv2_0_5x = _member(
    dict(type='CifarShuffleNetV2', widen_factor=0.5,
         out_indices=(0, 1, 2)), 1024)
shufflenetv2_1x = _member(
    dict(type='CifarShuffleNetV2', widen_factor=1.0,
         out_indices=(0, 1, 2)), 1024)
