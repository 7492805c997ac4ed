# MNIST canvases (held-out MNIST-5k digits on 96x96 black canvases), COCO
# format, boxes and masks of the visible ink of each digit. Make them with
# `python tools/dataset_converters/make_mnist_canvas.py`.
# Grey PNGs, loaded as 3 identical channels; digits are not flip-invariant,
# so no RandomFlip. Types carry their package ('mmdet.X', 'mmcv.X') and
# the dataset sets `_scope_='mmmcl'` (mmmcl types do not resolve from
# mmdet's registries), so this works under any default scope.
# The dataset class imports mmdet, so `import mmmcl` leaves it out: every
# tool that reads this config (mmmcl's, mmdet's tools/train.py) imports it.
custom_imports = dict(
    imports=['mmmcl.datasets.transfer'], allow_failed_imports=False)
dataset_type = 'mmmcl.MNISTCanvasDetDataset'
data_root = 'data/mnist_canvas/'
img_scale = (96, 96)
backend_args = None

train_pipeline = [
    dict(type='mmcv.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.PackDetInputs')
]
test_pipeline = [
    dict(type='mmcv.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        _scope_='mmmcl',
        data_root=data_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        _scope_='mmmcl',
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        _scope_='mmmcl',
        data_root=data_root,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='images/test/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))

val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + 'annotations/instances_test.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
