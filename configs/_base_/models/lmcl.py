# L-MCL (TPAMI 2023): auxiliary branches after every backbone output but
# the last, the four contrastive terms over all (net, stage) blocks with
# meta-learned matching weights, stage aggregators and logit KD.
# CIFAR defaults (paper section 7); the ImageNet recipe changes
# aux_depth='one_block' and alpha = beta = 0.01.
model = dict(
    type='CohortDistiller',
    aux_depth='full',
    embed_dim=128,
    contrast_loss=dict(
        type='InBatchContrastLoss',
        tau=0.1,
        kd_temperature=3.0,
        mask_cross_view_self=True),
    loss_weights=dict(vcl=0.1, soft_vcl=1.0, icl=0.1, soft_icl=1.0),
    logit_kd='aggregator',
    kd_loss=dict(type='LogitKDLoss', temperature=3.0),
    meta=dict(interval=50, virtual_steps=2, momentum=0.9, proj_dim=128))
# The paper's recipe: every term at full weight from the first step (no
# `loss_ramp`). A child adds model.loss_ramp=dict(type='LossWeightRamp',
# shape='sigmoid', length=80) to ramp every distillation term up as ONE /
# OKDDip / FFL / PCL do (80 of 300 epochs); see LossWeightRamp.
