# The ImageNet recipe's memory banks (paper section 7), mixed into MCL and
# L-MCL in place of their in-batch negatives:
# model = dict(terms=dict(contrast=dict(
#     contrast_loss={{_base_.memory_bank_contrast}}))).
# Banks of 128-d embeddings (the dataset brings 8192 negatives a sample),
# tau 0.07, bank momentum 0.5; `num_samples` is the length of ImageNet-1k
# train.
memory_bank_contrast = dict(
    _delete_=True,  # replaces the in-batch loss
    type='MemoryBankContrastLoss',
    num_samples=1281167,
    feat_dim=128,
    num_members=2,
    tau=0.07,
    kd_temperature=3.0,
    momentum=0.5)
