# ONE (Lan et al., NeurIPS 2018; github Lan1991Xu/ONE_NeurIPS2018): one
# network whose trunk (stem, stages 1-2) is shared by 3 copies of the last
# stage; a gate softmax(ReLU(BN(FC(GAP(trunk))))) weighs the branches into
# the ensemble z_e, trained by its own CE; every branch mimics z_e
# (detached), T = 3, ramped up as exp(-5 (1 - e/80)^2). The child sets
# peers.classifier and the gate's in_channels (the trunk's width).
model = dict(
    type='CohortDistiller',
    peers=dict(type='BranchedClassifier', branch_at=(2, ), num_branches=(3, )),
    teachers=dict(
        ensemble=dict(
            target=dict(type='GatedEnsembleTarget', num_branches=3),
            ce_weight=1.0)),
    distill=[dict(teacher='ensemble')],
    kd_loss=dict(type='LogitKDLoss', temperature=3.0, target_eps=1e-7),
    loss_ramp=dict(type='LossWeightRamp', shape='sigmoid', length=80),
    # ONE's number is a single branch (the official code keeps the epoch of
    # branch 1's best accuracy, cifar_one.py:250-251), ONE-E's the gated
    # ensemble z_e; the first is the checkpoint's criterion (save_best='auto')
    classifiers={
        'one/branch0': dict(peer=0),
        'one/gated_ensemble': dict(teacher='ensemble')
    })
