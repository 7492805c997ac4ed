# MCL (AAAI 2022): the final layer of each peer only (S = 1, w = 1), the
# four contrastive terms (a MutualContrastTerm). The optional logit KD to
# the detached mean of the cohort's logits: teachers=dict(mean=dict(
# target=dict(type='PeerMeanTarget'))), distill=[dict(teacher='mean')].
_base_ = ['./independent.py']
model = dict(
    terms=dict(
        contrast=dict(
            type='MutualContrastTerm',
            embed_dim=128,
            contrast_loss=dict(
                type='InBatchContrastLoss',
                tau=0.1,
                kd_temperature=3.0,
                mask_cross_view_self=True),
            loss_weights=dict(vcl=0.1, soft_vcl=1.0, icl=0.1,
                              soft_icl=1.0))))
