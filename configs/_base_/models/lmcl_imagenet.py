# L-MCL, ImageNet recipe (paper section 7): one-block auxiliary branches
# after stages 1-3 (S = 4), memory banks, alpha = beta = 0.01, meta step
# every 500 iterations.
_base_ = ['./lmcl.py', './memory_bank.py']
model = dict(
    aux_depth='one_block',
    contrast_loss={{_base_.memory_bank_contrast}},
    loss_weights=dict(vcl=0.01, icl=0.01),
    meta=dict(interval=500))
