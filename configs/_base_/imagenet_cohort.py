# Everything of an ImageNet cohort run with memory banks but the method and
# the members.
_base_ = [
    './models/imagenet_members.py',
    './datasets/imagenet_bs32_contrast_index.py',
    './schedules/imagenet_sgd_100e_step.py', './default_runtime.py'
]
