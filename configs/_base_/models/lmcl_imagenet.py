# L-MCL, ImageNet recipe (paper section 7): one-block auxiliary branches
# after stages 1-3 (S = 4), memory banks, alpha = beta = 0.01, meta step
# every 500 iterations.
# The meta step as the authors' code runs it (winycg/L-MCL,
# main_layer_mcl_imagenet_meta.py, losses/meta_optimizers.py), for the
# paper's configs: its momentum adjoint, the replay's extra BN and bank
# update, and virtual steps that write the banks (K + 1 copies of them
# during a meta step, as MetaSGD's snapshots); see configs/lmcl/README.md.
# The exact meta step: --cfg-options model.meta.momentum_adjoint=exact
# model.meta.replay_bn=none model.meta.virtual_buffers=fresh
# On purpose not as the reference: VCL reads each net's own bank (the
# paper's term; the code reads net a's for both: terms.contrast.
# contrast_loss.vcl_bank=
# 'anchor'), and the heads keep mmpretrain's init (the reference's was read
# from its CIFAR networks only).
_base_ = ['./lmcl.py', './memory_bank.py']
model = dict(
    peers=dict(aux_depth='one_block'),
    terms=dict(
        contrast=dict(
            contrast_loss={{_base_.memory_bank_contrast}},
            loss_weights=dict(vcl=0.01, icl=0.01))),
    meta=dict(
        interval=500,
        momentum_adjoint='reference',
        replay_bn='reference',
        virtual_buffers='carried'))
