_base_ = [
    '../_base_/models/pcl.py', '../_base_/models/cifar_members.py',
    '../_base_/datasets/cifar100_bs128_multiview.py',
    '../_base_/schedules/cifar100_sgd_300e_step.py',
    '../_base_/default_runtime.py'
]
model = dict(
    # the reference's init loop leaves the classifiers at PyTorch's default
    head_init='reference',
    peers=dict(classifier={{_base_.resnet32}}),
    num_classes=100,
    data_preprocessor={{_base_.multiview_preprocessor}},
    teachers=dict(
        ensemble=dict(target=dict(in_channels=[64] * 3))))
# a view per branch
train_dataloader = dict(dataset=dict(pipeline={{_base_.three_views}}))
