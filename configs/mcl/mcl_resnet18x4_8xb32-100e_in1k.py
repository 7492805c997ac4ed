_base_ = ['./mcl_resnet18x2_8xb32-100e_in1k.py']
model = dict(
    peers=dict(members=[{{_base_.resnet18}}] * 4),
    terms=dict(contrast=dict(contrast_loss=dict(num_members=4))))
