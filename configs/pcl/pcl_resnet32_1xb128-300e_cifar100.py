_base_ = ['../_base_/models/pcl.py', '../_base_/cifar100_online_kd_step.py']
model = dict(
    # the reference's init loop leaves the classifiers at PyTorch's default
    head_init='reference',
    peers=dict(classifier={{_base_.resnet32}}),
    num_classes=100,
    data_preprocessor={{_base_.multiview_preprocessor}},
    teachers=dict(
        ensemble=dict(target=dict(in_channels=[64] * 3))))
# each peer sees its own random augmentation of the image (the views are
# stacked by default_collate, as SelfSupDataPreprocessor expects)
train_dataloader = dict(
    collate_fn=dict(type='default_collate'),
    dataset=dict(pipeline=[
        dict(
            type='mmpretrain.MultiView',
            num_views=3,
            transforms=[{{_base_.train_transforms}}]),
        dict(type='mmpretrain.PackInputs')
    ]))
test_dataloader = dict(collate_fn=dict(type='default_collate'))
