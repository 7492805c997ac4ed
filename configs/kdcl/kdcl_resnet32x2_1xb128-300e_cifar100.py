_base_ = ['../_base_/models/kdcl.py', '../_base_/cifar100_online_kd.py']
model = dict(
    peers=dict(members=[{{_base_.resnet32}}, {{_base_.resnet32}}]),
    num_classes=100,
    data_preprocessor={{_base_.multiview_preprocessor}})
# each peer sees its own random augmentation of the image (the views are
# stacked by default_collate, as SelfSupDataPreprocessor expects)
train_dataloader = dict(
    collate_fn=dict(type='default_collate'),
    dataset=dict(pipeline=[
        dict(
            type='mmpretrain.MultiView',
            num_views=2,
            transforms=[{{_base_.train_transforms}}]),
        dict(type='mmpretrain.PackInputs')
    ]))
test_dataloader = dict(collate_fn=dict(type='default_collate'))
