# Everything of an ImageNet baseline run (no banks) but the members.
_base_ = [
    './models/independent.py', './models/imagenet_members.py',
    './datasets/imagenet_bs32.py', './schedules/imagenet_sgd_100e_step.py',
    './default_runtime.py'
]
