# L-MCL, ImageNet recipe (paper section 7): one-block auxiliary branches
# after stages 1-3 (S = 4), memory banks of 128-d embeddings with 8192
# negatives, tau 0.07, bank momentum 0.5, alpha = beta = 0.01, meta step
# every 500 iterations. `num_samples` is the length of ImageNet-1k train.
_base_ = ['./lmcl.py']
model = dict(
    aux_depth='one_block',
    contrast_loss=dict(
        _delete_=True,
        type='MemoryBankContrastLoss',
        num_samples=1281167,
        feat_dim=128,
        num_members=2,
        tau=0.07,
        kd_temperature=3.0,
        momentum=0.5),
    loss_weights=dict(vcl=0.01, icl=0.01),
    meta=dict(interval=500))
