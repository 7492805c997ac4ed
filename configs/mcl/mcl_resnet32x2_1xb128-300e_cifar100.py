_base_ = ['../_base_/models/mcl.py', '../_base_/cifar100_cohort.py']
# As the authors' MCL (winycg/MCL, losses/cifar_sup_mcl_loss.py), which
# counts each contrast matrix once: InBatchContrastLoss sums L-MCL's ordered
# blocks, counting every one twice for 2 nets, so the weights are halves of
# their (0.1, 1, 0.1, 1). Their classifiers keep PyTorch's default init.
model = dict(
    peers=dict(members=[{{_base_.resnet32}}, {{_base_.resnet32}}]),
    terms=dict(
        contrast=dict(
            loss_weights=dict(
                vcl=0.05, soft_vcl=0.5, icl=0.05, soft_icl=0.5))),
    head_init='reference')
