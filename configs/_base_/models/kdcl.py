# KDCL-MinLogit (Guo et al., CVPR 2020): independent peers of any
# architecture, each on its own random augmentation of the image (the
# child's MultiView pipeline); the teacher, class by class the smallest
# label-shifted logit over the peers, detached; (1 - a) CE + a T^2 KL with
# a = 0.5, T = 4. The child sets peers.members.
model = dict(
    type='CohortDistiller',
    peers=dict(type='IndependentPeers'),
    ce_weight=0.5,
    teachers=dict(ensemble=dict(target=dict(type='MinLogitTarget'))),
    distill=[dict(teacher='ensemble', weight=0.5)],
    kd_loss=dict(type='LogitKDLoss', temperature=4.0))
