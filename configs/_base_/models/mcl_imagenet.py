# MCL (AAAI 2022), ImageNet recipe: the final layer only (S = 1, w = 1),
# memory banks, alpha = beta = 0.01.
_base_ = ['./mcl.py', './memory_bank.py']
model = dict(
    terms=dict(
        contrast=dict(
            contrast_loss={{_base_.memory_bank_contrast}},
            loss_weights=dict(vcl=0.01, icl=0.01))))
