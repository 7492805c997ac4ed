# PCL (Wu & Gong, AAAI 2021): a shared trunk run on 3 augmented views, one
# per branch (the child's MultiView pipeline); the peer ensemble teacher, a
# linear classifier on the concatenated pooled features, trained by its own
# CE; the temporal mean of the peers, used at test: mean teacher's EMA
# (Tarvainen & Valpola 2017, which PCL builds on), decay
# min(1 - 1 / (step + 1), 0.999), i.e. MMEngine's MomentumAnnealingEMA
# with momentum max(0.001, 1 / (1 + step)); it keeps the BN statistics of
# its own train-mode forward (own_buffers), as the re-implementation
# (shaoeric/Peer-Collaborative-Learning..., src/utils/ema.py averages the
# parameters only).
# Branch i mimics the ensemble (detached) and, one KL each, averaged, the
# temporal-mean peers j != i (the re-implementation's PMLoss,
# src/losses/kd_loss.py 29-41); T = 3, ramp over 80 epochs (fixed: the
# re-implementation's is about 0 for epochs 2-80). The child sets
# peers.classifier and the ensemble's in_channels.
model = dict(
    type='CohortDistiller',
    peers=dict(type='BranchedClassifier', branch_at=(2, ), num_branches=(3, )),
    teachers=dict(
        ensemble=dict(target=dict(type='ConcatFeatureTarget'), ce_weight=1.0),
        peer_mean=dict(
            target=dict(type='OtherPeersTarget'), source='temporal_mean')),
    distill=[dict(teacher='ensemble'), dict(teacher='peer_mean')],
    temporal_mean=dict(
        type='MomentumAnnealingEMA',
        momentum=0.001,
        gamma=1,
        test=True,
        own_buffers=True),
    kd_loss=dict(type='LogitKDLoss', temperature=3.0),
    loss_ramp=dict(type='LossWeightRamp', shape='sigmoid', length=80),
    # the paper deploys the temporal mean of the first peer (the
    # re-implementation's README; it records the best of the three)
    classifiers={'pcl/temporal_mean': dict(source='temporal_mean', peer=0)})
