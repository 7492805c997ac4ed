# How a transfer config's backbone gets an exported mmmcl member: mmmcl's
# strict loader (it fails on any missing or unexpected key or shape) in
# place of the stock torchvision / open-mmlab weights. The export is given
# on the command line, --cfg-options model.backbone.init_cfg.checkpoint=PATH;
# from scratch is model.backbone.init_cfg=None. The type carries its scope
# (mmmcl's registry is not mmdet's or mmseg's).
member_init = dict(_scope_='mmmcl', type='Pretrained', checkpoint=None)
