# cifar100_online_kd.py with the step schedule of OKDDip, PCL and FFL
# (x0.1 at epochs 150 and 225 of 300).
_base_ = [
    './models/cifar_members.py', './datasets/cifar100_bs128.py',
    './schedules/cifar100_sgd_300e_step.py', './default_runtime.py'
]
