"""``RandomCropFlip`` (and the multi-view preprocessor that applies it per
view) against mmpretrain's CPU ``RandomCrop(32, padding=4)`` +
``RandomFlip(0.5)``: the same images for the same draw, the same
distribution of draws, seeded, training batches only."""
from unittest import mock

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine import Config
from mmpretrain.models import ClsDataPreprocessor, SelfSupDataPreprocessor
from mmpretrain.registry import TRANSFORMS
from mmpretrain.structures import DataSample

from mmmcl.models.utils import MultiViewDataPreprocessor, RandomCropFlip

DATASET_BASE = (Path(__file__).parents[2] /
                'configs/_base_/datasets/cifar100_bs128.py')
MEAN = [129.304, 124.070, 112.434]
STD = [68.170, 65.392, 70.418]
CROP_FLIP = dict(type='mmmcl.RandomCropFlip', crop_size=32, mean=MEAN,
                 std=STD)
# chi-square 0.999 quantile, 80 degrees of freedom (9 x 9 offsets - 1)
CHI2_80_999 = 124.84


@functools.lru_cache()
def cpu_pipeline():
    """The CIFAR configs' train pipeline: RandomCrop, RandomFlip,
    PackInputs."""
    pipeline = Config.fromfile(DATASET_BASE).train_pipeline
    return [TRANSFORMS.build(t) for t in pipeline]


def run(pipeline, img: np.ndarray) -> torch.Tensor:
    """``img`` (H, W, C) through ``pipeline``; (C, H', W') tensor."""
    results = dict(img=img.copy(), gt_label=0)
    for transform in pipeline:
        results = transform(results)
    return results['inputs']


def cpu_augment(img: np.ndarray, top: int, left: int, flip: bool):
    """``img`` (H, W, C) through the CPU pipeline with its draw fixed to
    ``top``, ``left``, ``flip``; (C, 32, 32) tensor."""
    pipeline = cpu_pipeline()
    crop, flipper = pipeline[:2]
    with mock.patch.object(crop, 'rand_crop_params',
                           return_value=(top, left, 32, 32)), \
            mock.patch.object(flipper, '_choose_direction',
                              return_value='horizontal' if flip else None):
        return run(pipeline, img)


def normalise(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` (N, 3, H, W) uint8 as the CIFAR configs' preprocessor
    normalises it."""
    preprocessor = ClsDataPreprocessor(mean=MEAN, std=STD)
    return preprocessor(dict(inputs=batch), False)['inputs']


def labelled(images: torch.Tensor) -> dict:
    """A collated batch of ``images`` (N, 3, H, W) with labels."""
    return dict(
        inputs=images,
        data_samples=[DataSample().set_gt_label(i % 10)
                      for i in range(len(images))])


def coordinates(n: int) -> torch.Tensor:
    """(n, 2, 32, 32): channel 0 holds row + 1, channel 1 column + 1, so
    that a crop's padding (0) and origin can be read back."""
    grid = torch.arange(1, 33, dtype=torch.float32)
    image = torch.stack([grid.view(32, 1).expand(32, 32),
                         grid.view(1, 32).expand(32, 32)])
    return image.expand(n, 2, 32, 32)


def decode(crops: torch.Tensor):
    """``top``, ``left``, ``flip`` (N, ) of crops (N, 2, 32, 32) of
    :func:`coordinates` padded by 4: pixels (4, 4) and (4, 27) of a crop
    always come from the image, and a flip swaps their columns' order."""
    a, b = crops[:, :, 4, 4], crops[:, :, 4, 27]
    flip = a[:, 1] > b[:, 1]
    left = torch.where(flip, b[:, 1], a[:, 1]) - 1
    return (a[:, 0] - 1).long(), left.long(), flip


def assert_cpu_distribution(top, left, flip, flip_prob: float = 0.5):
    """Offsets uniform over 0..8 x 0..8 (chi-square at level 0.001) and a
    flip rate within 4 standard deviations of ``flip_prob``."""
    n = len(top)
    assert 0 <= top.min() and top.max() <= 8
    assert 0 <= left.min() and left.max() <= 8
    counts = torch.bincount(top * 9 + left, minlength=81).double()
    expected = n / 81
    chi2 = ((counts - expected)**2 / expected).sum().item()
    assert chi2 < CHI2_80_999, (chi2, counts.view(9, 9))
    sd = (n * flip_prob * (1 - flip_prob))**0.5
    assert abs(flip.sum().item() - n * flip_prob) < 4 * sd


def test_every_draw_equals_the_cpu_transforms():
    """All 9 x 9 offsets, flipped or not: the CPU crop of the zero-padded
    image, flipped, then normalised, is exactly the device crop of the
    normalised image padded with -mean / std."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    grid = torch.cartesian_prod(torch.arange(9), torch.arange(9),
                                torch.arange(2))
    top, left, flip = grid[:, 0], grid[:, 1], grid[:, 2].bool()
    expected = normalise(
        torch.stack([
            cpu_augment(img, t, l, f)
            for t, l, f in zip(top.tolist(), left.tolist(), flip.tolist())
        ]))
    image = torch.from_numpy(img).permute(2, 0, 1).expand(len(grid), 3, 32,
                                                          32)
    crops = RandomCropFlip(32, MEAN, STD).crop_flip(
        normalise(image), top, left, flip)
    assert torch.equal(crops, expected)
    # the padding is there: the corner of the top-left crop is a zero pixel
    assert torch.equal(crops[0, :, 0, 0], normalise(
        torch.zeros(1, 3, 1, 1, dtype=torch.uint8)).view(3))


def test_preprocessor_in_training_equals_the_cpu_transforms():
    """A ClsDataPreprocessor with the augment: each training image is the
    CPU transforms' image for the draw of a twin augment (same seed)."""
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    preprocessor = ClsDataPreprocessor(
        mean=MEAN, std=STD, num_classes=10,
        batch_augments=dict(augments=dict(CROP_FLIP, seed=3)))
    out = preprocessor(labelled(images), True)['inputs']
    top, left, flip = RandomCropFlip(32, MEAN, STD, seed=3).sample(images)
    expected = normalise(torch.stack([
        cpu_augment(img.permute(1, 2, 0).numpy(), t, l, f)
        for img, t, l, f in zip(images, top.tolist(), left.tolist(),
                                flip.tolist())
    ]))
    assert torch.equal(out, expected)
    assert not torch.equal(out, normalise(images))


def test_cpu_transforms_draw_uniform_offsets_and_fair_flips():
    """The reference: what the CPU transforms draw (read back from the
    crops of a coordinate image), 50 per offset cell on average."""
    pipeline = cpu_pipeline()
    np.random.seed(0)
    image = coordinates(1)[0].permute(1, 2, 0).to(torch.uint8).numpy()
    crops = torch.stack([run(pipeline, image) for _ in range(81 * 50)])
    assert_cpu_distribution(*decode(crops))


@pytest.mark.parametrize('flip_prob', [0.5, 0.2])
def test_device_draws_have_the_cpu_distribution(flip_prob):
    """81 x 100 seeded draws, read back from the crops: uniform offsets
    0..8 and flips at ``flip_prob``. Checked by hand to fail for offsets
    drawn from 0..7 (``randint(h + 2 * p - crop_h)``: chi-square ~1090)
    and for ``rand() > flip_prob`` at 0.2."""
    augment = RandomCropFlip(32, [0, 0], [1, 1], flip_prob=flip_prob, seed=0)
    images = coordinates(810)
    draws = []
    for _ in range(10):
        crops, _ = augment(images)
        draw = decode(crops)
        assert torch.equal(augment.crop_flip(images, *draw), crops)
        draws.append(draw)
    assert_cpu_distribution(*map(torch.cat, zip(*draws)),
                            flip_prob=flip_prob)


def test_seeded_and_reproducible():
    images = torch.randn(32, 3, 32, 32)
    first, again = (RandomCropFlip(32, MEAN, STD, seed=1) for _ in range(2))
    out = first(images)[0]
    assert torch.equal(out, again(images)[0])
    assert not torch.equal(first(images)[0], out)  # the stream goes on
    assert not torch.equal(
        RandomCropFlip(32, MEAN, STD, seed=2)(images)[0], out)
    # rank r draws as seed + r does on rank 0
    with mock.patch(f'{RandomCropFlip.__module__}.get_rank', return_value=1):
        rank1 = RandomCropFlip(32, MEAN, STD, seed=1)(images)[0]
    assert torch.equal(rank1, RandomCropFlip(32, MEAN, STD, seed=2)(images)[0])
    # seed=None: torch's global generator, which MMEngine seeds
    unseeded = RandomCropFlip(32, MEAN, STD)
    torch.manual_seed(5)
    out = unseeded(images)[0]
    torch.manual_seed(5)
    assert torch.equal(unseeded(images)[0], out)


def test_test_batches_are_not_augmented():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    preprocessor = ClsDataPreprocessor(
        mean=MEAN, std=STD, num_classes=10,
        batch_augments=dict(augments=CROP_FLIP))
    assert torch.equal(
        preprocessor(labelled(images), False)['inputs'], normalise(images))


def test_multiview_preprocessor_crops_each_view_in_training_only():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    data = dict(inputs=[images, images], data_samples=labelled(images)[
        'data_samples'])
    preprocessor = MultiViewDataPreprocessor(
        mean=MEAN, std=STD, view_augment=dict(CROP_FLIP, seed=7))
    plain = SelfSupDataPreprocessor(mean=MEAN, std=STD)(data, False)
    assert all(
        torch.equal(a, b)
        for a, b in zip(preprocessor(data, False)['inputs'], plain['inputs']))
    views = preprocessor(data, True)['inputs']
    twin = RandomCropFlip(32, MEAN, STD, seed=7)
    for view, normalised in zip(views, plain['inputs']):
        assert torch.equal(
            view, twin.crop_flip(normalised, *twin.sample(normalised)))
    assert not torch.equal(views[0], views[1])  # a draw of its own


@pytest.mark.parametrize('kwargs, match', [
    (dict(crop_size=0), '`crop_size` must be a positive int'),
    (dict(crop_size=(32, )), '`crop_size` must be a positive int'),
    (dict(crop_size=32.0), '`crop_size` must be a positive int'),
    (dict(padding=-1), '`padding` must be an int >= 0'),
    (dict(padding=(4, 4)), '`padding` must be an int >= 0'),
    (dict(flip_prob=1.5), r'`flip_prob` must be in \[0, 1\]'),
    (dict(flip_prob='0.5'), r'`flip_prob` must be in \[0, 1\]'),
    (dict(mean=None), '`mean` must be the data preprocessor'),
    (dict(std=[]), '`std` must be the data preprocessor'),
    (dict(mean=MEAN[:2]), 'of one length'),
    (dict(std=[68.17, 0., 70.418]), '`std` > 0'),
    (dict(seed='0'), '`seed` must be an int or None'),
])
def test_bad_arguments_name_the_field(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RandomCropFlip(**dict(dict(crop_size=32, mean=MEAN, std=STD),
                              **kwargs))


def test_bad_batches_say_what_to_do():
    augment = RandomCropFlip(32, MEAN, STD)
    # a MultiView batch given to the single-view ClsDataPreprocessor
    preprocessor = ClsDataPreprocessor(
        mean=MEAN, std=STD, num_classes=10,
        batch_augments=dict(augments=CROP_FLIP))
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    data = dict(inputs=[images, images],
                data_samples=labelled(images)['data_samples'])
    with pytest.raises(ValueError, match='MultiViewDataPreprocessor'):
        preprocessor(data, True)
    with pytest.raises(ValueError, match='lower `crop_size`'):
        RandomCropFlip(48, MEAN, STD)(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match='3 values, the batch 1 channels'):
        augment(torch.zeros(2, 1, 32, 32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_draws_are_seeded_and_crop_as_on_the_cpu():
    images = torch.randn(64, 3, 32, 32)
    first, again = (RandomCropFlip(32, MEAN, STD, seed=0) for _ in range(2))
    out = first(images.cuda())[0]
    assert out.is_cuda and torch.equal(out, again(images.cuda())[0])
    top, left, flip = RandomCropFlip(32, MEAN, STD, seed=0).sample(
        images.cuda())
    assert torch.equal(
        out.cpu(), first.crop_flip(images, top.cpu(), left.cpu(),
                                   flip.cpu()))
