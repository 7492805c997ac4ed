# MNIST canvases (held-out MNIST-5k digits on 96x96 black canvases),
# semantic maps: 0 background, d + 1 for digit d (11 classes). Make them
# with `python tools/dataset_converters/make_mnist_canvas.py`.
# Grey PNGs, loaded as 3 identical channels; digits are not flip-invariant,
# so no RandomFlip. Types carry their package ('mmseg.X', 'mmcv.X') and
# the dataset sets `_scope_='mmmcl'` (mmmcl types do not resolve from
# mmseg's registries), so this works under any default scope.
# The dataset class imports mmseg, so `import mmmcl` leaves it out: every
# tool that reads this config (mmmcl's, mmseg's tools/train.py) imports it.
custom_imports = dict(
    imports=['mmmcl.datasets.transfer'], allow_failed_imports=False)
dataset_type = 'mmmcl.MNISTCanvasSegDataset'
data_root = 'data/mnist_canvas/'
img_scale = (96, 96)

train_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='mmseg.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmseg.PackSegInputs')
]
test_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='mmseg.Resize', scale=img_scale, keep_ratio=True),
    # after Resize: the metric compares with the original-size map
    dict(type='mmseg.LoadAnnotations'),
    dict(type='mmseg.PackSegInputs')
]

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        _scope_='mmmcl',
        data_root=data_root,
        data_prefix=dict(
            img_path='images/train', seg_map_path='seg_maps/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        _scope_='mmmcl',
        data_root=data_root,
        data_prefix=dict(img_path='images/val', seg_map_path='seg_maps/val'),
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        _scope_='mmmcl',
        data_root=data_root,
        data_prefix=dict(img_path='images/test', seg_map_path='seg_maps/test'),
        pipeline=test_pipeline))

val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
