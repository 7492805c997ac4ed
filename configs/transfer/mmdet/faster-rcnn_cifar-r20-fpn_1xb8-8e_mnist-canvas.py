# Faster R-CNN on the MNIST canvases (96x96, digits 0-9) with an mmmcl
# CifarResNet-20 member, e.g. of configs/lmcl/
# lmcl_resnet20x2_1xb100-15e_mnist5k.py: the transfer workflow on the
# embedded data, on one CPU in minutes. Light heads (FPN and RPN at 64
# channels, 64 sampled RoIs, one 256-wide fc pair, 300 proposals); the
# backbone keeps the paper's setting (frozen_stages=1, norm_eval).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../../_base_/datasets/mnist_canvas_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/mmdet_backbones.py'
]

model = dict(
    # the pretraining's normalisation (configs/_base_/datasets/
    # mnist5k_bs100_balanced.py): grey digits, no channel swap
    data_preprocessor=dict(
        mean=[33.3, 33.3, 33.3], std=[78.6, 78.6, 78.6], bgr_to_rgb=False),
    backbone={{_base_.det_cifar_resnet20}},
    # levels at strides 1 / 2 / 4 and a max-pooled one at 8
    neck=dict(in_channels=[16, 32, 64], out_channels=64, num_outs=4),
    # anchors of 8 / 16 / 32 / 64 px; digits are 20-40 px before cropping
    # to their ink
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        anchor_generator=dict(scales=[8], strides=[1, 2, 4, 8])),
    roi_head=dict(
        # finest_scale 14: RoIs under 28 px on stride 1, 28-56 px on
        # stride 2, larger on 4 (the stock 56 over stride 4, scaled down)
        bbox_roi_extractor=dict(
            roi_layer=dict(sampling_ratio=2),
            out_channels=64,
            featmap_strides=[1, 2, 4],
            finest_scale=14),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=10)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=300)))

# Faster R-CNN boxes only (the dataset base evaluates bbox and segm)
val_evaluator = dict(metric='bbox')
test_evaluator = dict(metric='bbox')

# Few labels, so that pre-training can matter: the first 100 training
# canvases (13 steps of 8 a epoch), 8 epochs, a 25-step warm-up, x0.1 for
# the last epoch; lr 0.02 x 8 / 16 (linear scaling from the stock 8 GPUs x
# 2 images); val every 2 epochs picks the checkpoint. Seeded (mmdet's
# runtime is not), so that a fine-tuning can be repeated. The schedule of
# `make demo`.
train_dataloader = dict(dataset=dict(indices=100))
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=25),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[7],
        gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(
        interval=2, max_keep_ckpts=1, save_best='coco/bbox_mAP',
        rule='greater'))
randomness = dict(seed=0)
