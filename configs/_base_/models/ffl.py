# FFL (Kim et al., ICPR 2020; github Jangho-Kim/FFL-pytorch): a shared
# trunk and 2 branches; the fusion module (depthwise 3x3 + BN + ReLU, 1x1 +
# BN + ReLU, GAP, FC) on the concatenated last maps, trained by its own CE.
# The branches mimic the fused logits (detached), the fusion mimics the
# branches' mean (detached); T = 3, 1e-7 target shift, ramp over 80
# epochs. The reference's separate fusion optimizer (weight decay 1e-5,
# same lr schedule) is a parameter group of `teachers.fusion` (see the
# configs). The child sets peers.classifier and the fusion's in_channels.
model = dict(
    type='CohortDistiller',
    peers=dict(type='BranchedClassifier', branch_at=(2, ), num_branches=(2, )),
    teachers=dict(
        fusion=dict(target=dict(type='FusionTarget'), ce_weight=1.0),
        mean=dict(target=dict(type='PeerMeanTarget'))),
    distill=[
        dict(teacher='fusion'),
        dict(teacher='mean', students='fusion'),
    ],
    kd_loss=dict(type='LogitKDLoss', temperature=3.0, target_eps=1e-7),
    loss_ramp=dict(type='LossWeightRamp', shape='sigmoid', length=80),
    # FFL's number is the fused classifier's, FFL-S's a branch's (member0)
    classifiers={'ffl/fused': dict(teacher='fusion')})
