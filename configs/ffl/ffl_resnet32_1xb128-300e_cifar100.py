_base_ = ['../_base_/models/ffl.py', '../_base_/cifar100_online_kd_step.py']
model = dict(
    # the reference's init loop leaves the classifiers at PyTorch's default
    head_init='reference',
    peers=dict(classifier={{_base_.resnet32}}),
    teachers=dict(
        fusion=dict(target=dict(in_channels=[64, 64]))))
# FFL's optimisers (train_FFL.py): the peers' weight decay 1e-4, the fusion
# module's 1e-5 (a parameter group: the same lr schedule)
optim_wrapper = dict(
    cohort=dict(
        optimizer=dict(weight_decay=1e-4),
        paramwise_cfg=dict(
            custom_keys={'teachers.fusion': dict(decay_mult=0.1)})))
# train_FFL.py runs `range(0, 300 + 1)`: 301 epochs; its crop pads by
# reflection (utils.py: Pad(4, padding_mode='reflect'))
train_cfg = dict(max_epochs=301)
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(
            type='mmpretrain.RandomCrop',
            crop_size=32,
            padding=4,
            padding_mode='reflect'),
        dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='mmpretrain.PackInputs')
    ]))
