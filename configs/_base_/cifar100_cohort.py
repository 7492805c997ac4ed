# Everything of a CIFAR-100 cohort run but the method and the members.
_base_ = [
    './models/cifar_members.py', './datasets/cifar100_bs128_balanced.py',
    './schedules/cifar100_sgd_300e_cosine.py', './default_runtime.py'
]
