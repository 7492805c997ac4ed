# Baseline, the root of every cohort model config: independent peers train
# side by side without any interaction, each with CE only (the paper's
# "baseline" column), on the same data and schedule as the other methods.
# DML adds a mutual logit KD teacher, MCL the contrastive term, L-MCL
# extends MCL. A child sets model.peers.members.
model = dict(type='CohortDistiller', peers=dict(type='IndependentPeers'))
