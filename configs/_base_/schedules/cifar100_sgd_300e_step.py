# The step schedule of OKDDip, PCL and FFL: the paper's CIFAR optimiser,
# lr x0.1 at epochs 150 and 225 of 300.
_base_ = ['./cifar100_sgd_300e_cosine.py']
param_scheduler = dict(
    _delete_=True,
    type='MultiStepLR',
    by_epoch=True,
    milestones=[150, 225],
    gamma=0.1)
