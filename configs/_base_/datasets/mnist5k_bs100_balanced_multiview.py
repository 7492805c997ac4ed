# mnist5k_bs100_balanced.py for the multi-view methods (KDCL, PCL): each
# peer sees its own random augmentation of the image, peer p view p % V
# (mmpretrain's MultiView of `train_transforms`); the views are stacked by
# default_collate, as the model's `multiview_preprocessor`
# (SelfSupDataPreprocessor) expects. V = 2, KDCL's two peers; PCL's three
# branches take `three_views`.
_base_ = ['./mnist5k_bs100_balanced.py']
_multiview = dict(
    type='mmpretrain.MultiView', transforms=[{{_base_.train_transforms}}])
_pack = dict(type='mmpretrain.PackInputs')
two_views = [dict(_multiview, num_views=2), _pack]
three_views = [dict(_multiview, num_views=3), _pack]
train_dataloader = dict(
    collate_fn=dict(type='default_collate'), dataset=dict(pipeline=two_views))
val_dataloader = dict(collate_fn=dict(type='default_collate'))
test_dataloader = val_dataloader
