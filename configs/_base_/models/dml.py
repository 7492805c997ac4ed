# DML (Zhang et al. 2018): CE + mutual logit KL (T = 1) between members.
_base_ = ['./lmcl.py']
model = dict(
    aux_depth=None,
    contrast_loss=None,
    logit_kd='mutual',
    kd_loss=dict(type='LogitKDLoss', temperature=1.0),
    meta=None)
