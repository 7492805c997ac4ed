_base_ = ['./mcl_resnet32x2_1xb128-300e_cifar100.py']
# 4 nets: the ordered blocks count each net's VCL 2 (M - 1) = 6 times and
# every other matrix twice, against once in the authors' loss
model = dict(
    peers=dict(members=[{{_base_.resnet32}}] * 4),
    terms=dict(contrast=dict(loss_weights=dict(vcl=0.1 / 6))))
