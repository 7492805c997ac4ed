# FCN on the MNIST canvases (96x96, background + digits 0-9) with an mmmcl
# CifarResNet-20 member, e.g. of configs/lmcl/
# lmcl_resnet20x2_1xb100-15e_mnist5k.py: the transfer workflow on the
# embedded data, on one CPU in minutes. The backbone keeps full resolution
# in stage 1 and reaches stride 4 in stage 3, so no dilation is needed;
# BN, not SyncBN, so that it trains in one process.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    '../../_base_/datasets/mnist_canvas_segmentation.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
    '../_base_/models/mmseg_backbones.py'
]

norm_cfg = dict(type='BN', requires_grad=True)
# background is ~96 % of the pixels: at weight 1 the 600 steps learn only
# background (mIoU 8.7); at 0.1 the digits come out (val mIoU 49 from an
# L-MCL member)
class_weight = [0.1] + [1.0] * 10
model = dict(
    # the pretraining's normalisation (configs/_base_/datasets/
    # mnist5k_bs100_balanced.py): grey digits, no channel swap
    data_preprocessor=dict(
        mean=[33.3, 33.3, 33.3],
        std=[78.6, 78.6, 78.6],
        bgr_to_rgb=False,
        size=(96, 96)),
    pretrained=None,  # the segmentor's own key: not used, see init_cfg
    backbone={{_base_.seg_cifar_resnet20}},
    decode_head=dict(
        in_channels=64,
        in_index=2,
        channels=64,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(class_weight=class_weight)),
    auxiliary_head=dict(
        in_channels=32,
        in_index=1,
        channels=32,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(class_weight=class_weight)))

# Few labels, so that pre-training can matter: the first 100 training
# canvases, 300 steps (24 epochs of 13) with a 25-step warm-up, SGD lr
# 0.05 and poly decay; val every 100 steps picks the checkpoint. Seeded
# (mmseg's runtime is not), so that a fine-tuning can be repeated. The
# schedule of `make demo`.
train_dataloader = dict(dataset=dict(indices=100))
max_iters = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=25),
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=25,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=100)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(
        interval=100, max_keep_ckpts=1, save_best='mIoU', rule='greater'))
optim_wrapper = dict(optimizer=dict(lr=0.05))
randomness = dict(seed=0)
