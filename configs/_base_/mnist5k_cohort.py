# Everything of an MNIST-5k cohort run but the method and the members.
_base_ = [
    './models/cifar_members.py', './datasets/mnist5k_bs100_balanced.py',
    './schedules/mnist5k_sgd_15e_warmup_cosine.py', './default_runtime.py'
]
