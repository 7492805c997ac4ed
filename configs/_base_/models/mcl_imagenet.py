# MCL (AAAI 2022), ImageNet recipe: the final layer only (S = 1, w = 1),
# with the memory banks of the L-MCL ImageNet recipe.
_base_ = ['./lmcl_imagenet.py']
model = dict(aux_depth=None, logit_kd=None, meta=None)
