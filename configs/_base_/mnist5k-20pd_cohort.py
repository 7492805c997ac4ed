# An MNIST-5k cohort run with 20 labelled images a digit (the regime that
# tools/analysis_tools/regime_study.py picked), all but the method and the
# members.
_base_ = [
    './models/cifar_members.py', './datasets/mnist5k_20pd_bs20_balanced.py',
    './schedules/mnist5k_sgd_8e_warmup_cosine.py', './default_runtime.py'
]
