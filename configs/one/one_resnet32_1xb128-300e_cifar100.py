_base_ = ['../_base_/models/one.py', '../_base_/cifar100_online_kd_step.py']
model = dict(
    peers=dict(classifier={{_base_.resnet32}}),
    # the reference's init loop leaves the classifiers at PyTorch's default
    head_init='reference',
    teachers=dict(
        ensemble=dict(target=dict(in_channels=32))))
# ONE's schedule (scripts/ONE_ResNet32.sh): SGD without Nesterov, wd 1e-4,
# lr x0.1 at epochs 151 and 225
optim_wrapper = dict(
    cohort=dict(optimizer=dict(nesterov=False, weight_decay=1e-4)))
param_scheduler = dict(milestones=[151, 225])
