# L-MCL as the authors' CIFAR code runs it (winycg/L-MCL,
# main_layer_mcl_cifar_meta.py, losses/meta_optimizers.py), for the paper's
# CIFAR-100 configs, which exist to reproduce its numbers:
# - the meta step's momentum adjoint as MetaSGD.meta_backward propagates it
#   (its hypergradient departs from the exact one, see configs/lmcl/README.md);
# - the replay's one extra BatchNorm statistics update per meta step;
# - the final classifiers with PyTorch's default Linear init, the auxiliary
#   classifiers' biases at zero.
# The exact behaviour: --cfg-options model.meta.momentum_adjoint=exact
# model.meta.replay_bn=none model.head_init=mmpretrain
_base_ = ['./lmcl.py']
model = dict(
    head_init='reference',
    meta=dict(momentum_adjoint='reference', replay_bn='reference'))
