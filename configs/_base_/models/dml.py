# DML (Zhang et al. 2018): CE + mutual logit KL (T = 1) between members.
_base_ = ['./independent.py']
model = dict(
    logit_kd='mutual', kd_loss=dict(type='LogitKDLoss', temperature=1.0))
