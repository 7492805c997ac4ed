# Baseline, the root of every cohort model config: the members train side
# by side without any interaction, each with CE only (the paper's
# "baseline" column), on the same data and schedule as the cohort methods.
# CohortDistiller's defaults are this baseline (no auxiliary branches, no
# contrast loss, no logit KD, no meta step); they stay unset here because a
# None in a base config cannot be overridden by a child's dict. DML adds
# logit KD, MCL the contrastive terms, L-MCL extends MCL.
model = dict(type='CohortDistiller')
