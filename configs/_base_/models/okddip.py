# OKDDip (Chen et al., AAAI 2020; github DefangChen/OKDDip, train_GL.py):
# trunk to stage 2, 3 auxiliary peers (0-2) and a group leader (3, the
# model kept for test). First level: peer i mimics x_i = sum_j a_ij z_j,
# a = softmax(q_i . k_j) of bias-free projections (D -> D/8) of the pooled
# features, not detached. Second level: the leader mimics the peers' mean,
# not detached. T = 3, the reference's 1e-7 target shift, ramp over 80
# epochs. The child sets peers.classifier and the attention's
# in_channels (the pooled width).
model = dict(
    type='CohortDistiller',
    peers=dict(type='BranchedClassifier', branch_at=(2, ), num_branches=(4, )),
    teachers=dict(
        attention=dict(
            target=dict(type='PeerAttentionTarget'), peers=(0, 1, 2)),
        group=dict(
            target=dict(type='PeerMeanTarget', detach=False),
            peers=(0, 1, 2))),
    distill=[
        dict(teacher='attention', detach=False),
        dict(teacher='group', students=(3, ), detach=False)
    ],
    kd_loss=dict(type='LogitKDLoss', temperature=3.0, target_eps=1e-7),
    loss_ramp=dict(type='LossWeightRamp', shape='sigmoid', length=80),
    # the group leader, peer 3 (train_GL.py keeps its best epoch, 330-333)
    classifiers={'okddip/leader': dict(peer=3)})
