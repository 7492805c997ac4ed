# Everything of a CIFAR-100 online-KD (zoo) run but the method and the peers:
# as cifar100_cohort.py, but batches of 128 drawn uniformly, as every zoo
# reference draws them.
_base_ = [
    './models/cifar_members.py', './datasets/cifar100_bs128.py',
    './schedules/cifar100_sgd_300e_cosine.py', './default_runtime.py'
]
