# MCL (AAAI 2022): the final layer of each member only (S = 1, w = 1), the
# four contrastive terms. logit_kd='mean' adds the optional logit KD to the
# detached mean of the cohort's logits.
_base_ = ['./lmcl.py']
model = dict(aux_depth=None, logit_kd=None, meta=None)
