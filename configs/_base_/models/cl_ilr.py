# CL-ILR (Song & Chai, NeurIPS 2018; github winycg/MCL-OKD,
# main_cifar_cl_ilr.py): a tree, stage 1 shared, stage 2 shared by pairs,
# 4 heads of stage 3; the gradient at each split is divided by its 2
# children (intermediate-level representation sharing). Each head mimics
# the detached mean of the other heads' logits: 0.5 CE + 0.5 T^2 KL, T = 2,
# no ramp.
model = dict(
    type='CohortDistiller',
    peers=dict(
        type='BranchedClassifier',
        branch_at=(1, 2),
        num_branches=(2, 2),
        grad_rescale=True),
    ce_weight=0.5,
    teachers=dict(
        others=dict(target=dict(type='PeerMeanTarget', exclude_self=True))),
    distill=[dict(teacher='others', weight=0.5)],
    kd_loss=dict(type='LogitKDLoss', temperature=2.0))
