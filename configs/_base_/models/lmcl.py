# L-MCL (TPAMI 2023): MCL's contrastive terms over all (peer, stage) blocks,
# with auxiliary branches after every backbone output but the last,
# meta-learned matching weights, stage aggregators (a teacher trained by its
# own CE) and logit KD of each final classifier to every aggregated logit.
# CIFAR defaults (paper section 7); the ImageNet recipe changes
# aux_depth='one_block' and alpha = beta = 0.01.
_base_ = ['./mcl.py']
model = dict(
    peers=dict(aux_depth='full'),
    teachers=dict(
        aggregator=dict(
            target=dict(type='StageAggregatorTarget'), ce_weight=1.0)),
    distill=[dict(teacher='aggregator', mimic='all')],
    kd_loss=dict(type='LogitKDLoss', temperature=3.0),
    meta=dict(interval=50, virtual_steps=2, momentum=0.9, proj_dim=128))
# The paper's recipe: every term at full weight from the first step (no
# `loss_ramp`). A child adds model.loss_ramp=dict(type='LossWeightRamp',
# shape='sigmoid', length=80) to ramp every loss term up as ONE /
# OKDDip / FFL / PCL do (80 of 300 epochs); see LossWeightRamp.
