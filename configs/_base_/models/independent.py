# Baseline: the members train side by side without any interaction, each
# with CE only (the paper's "baseline" column), on the same data and
# schedule as the cohort methods.
_base_ = ['./dml.py']
model = dict(logit_kd=None)
