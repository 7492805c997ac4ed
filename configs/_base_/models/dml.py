# DML (Zhang et al. 2018): CE + mutual logit KL (T = 1): each peer mimics
# every other peer (detached), the KL terms averaged over the others.
_base_ = ['./independent.py']
model = dict(
    teachers=dict(mutual=dict(target=dict(type='OtherPeersTarget'))),
    distill=[dict(teacher='mutual')],
    kd_loss=dict(type='LogitKDLoss', temperature=1.0))
