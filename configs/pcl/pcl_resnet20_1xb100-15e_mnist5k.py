_base_ = ['../_base_/models/pcl.py', '../_base_/mnist5k_cohort.py']
model = dict(
    peers=dict(classifier={{_base_.resnet20}}),
    num_classes=10,
    data_preprocessor={{_base_.multiview_preprocessor}},
    teachers=dict(ensemble=dict(target=dict(in_channels=[64] * 3))),
    # The reference's decay 0.999 averages about 1000 of its 117k steps;
    # the 150-200 steps on MNIST-5k keep a short average (about 10 steps):
    # a longer one would still carry the first steps' weights at test.
    temporal_mean=dict(momentum=0.1),
    # the references' 80 of 300 epochs, on 15
    loss_ramp=dict(length=4))
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
val_dataloader = dict(collate_fn=dict(type='default_collate'))
test_dataloader = val_dataloader
