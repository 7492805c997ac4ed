_base_ = [
    '../_base_/models/pcl.py', '../_base_/models/cifar_members.py',
    '../_base_/datasets/mnist5k_bs100_balanced_multiview.py',
    '../_base_/schedules/mnist5k_sgd_15e_warmup_cosine.py',
    '../_base_/default_runtime.py'
]
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
# a view per branch
train_dataloader = dict(dataset=dict(pipeline={{_base_.three_views}}))
