"""CIFAR's random crop of a zero-padded image and horizontal flip, done on
the device for a whole normalised batch."""
from numbers import Integral, Real
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import get_rank
from torch import Tensor

from mmmcl.registry import BATCH_AUGMENTS


@BATCH_AUGMENTS.register_module()
class RandomCropFlip:
    """``RandomCrop(crop_size, padding)`` then ``RandomFlip(flip_prob)``, as
    mmpretrain applies them to each image on the CPU, for a batch on its
    device.

    Each image independently gets a crop offset ``(top, left)`` drawn
    uniformly from ``0..H + 2 * padding - crop_h`` and
    ``0..W + 2 * padding - crop_w`` (``0..8`` each for CIFAR's 32 and 4) and
    a horizontal flip with probability ``flip_prob``: the distribution of
    the CPU transforms. The batch is already normalised (the data
    preprocessor runs batch augments last), so the padding is a zero pixel
    after normalisation, ``-mean / std`` per channel: the result equals
    normalising the CPU transforms' output.

    Randomness: with ``seed=None`` the offsets and flips come from torch's
    global generator of the batch's device, which MMEngine's
    ``randomness.seed`` seeds; with a ``seed``, from a generator of its own
    on that device, seeded ``seed + rank`` (ranks crop differently). The
    generators' states are not checkpointed: a resumed run draws from the
    seed again.

    Args:
        crop_size (int | Sequence[int]): Output size, ``crop`` or
            ``(crop_h, crop_w)``.
        mean (Sequence[float]): The data preprocessor's ``mean``, one value
            per channel (or one for all).
        std (Sequence[float]): The data preprocessor's ``std``, as ``mean``.
        padding (int): Zero padding on every border. Defaults to 4.
        flip_prob (float): Probability of a horizontal flip. Defaults to 0.5.
        seed (int, optional): Seed of an own generator. Defaults to None
            (torch's global generator).
    """

    def __init__(self,
                 crop_size: Union[int, Sequence[int]],
                 mean: Sequence[float],
                 std: Sequence[float],
                 padding: int = 4,
                 flip_prob: float = 0.5,
                 seed: Optional[int] = None) -> None:
        self.crop_size = _crop_size(crop_size)
        if not isinstance(padding, Integral) or padding < 0:
            raise ValueError(
                'RandomCropFlip: `padding` must be an int >= 0 (the same on '
                f'every border, as RandomCrop(padding=4)), got {padding!r}.')
        if not isinstance(flip_prob, Real) or not 0 <= flip_prob <= 1:
            raise ValueError('RandomCropFlip: `flip_prob` must be in [0, 1], '
                             f'got {flip_prob!r}.')
        if seed is not None and not isinstance(seed, Integral):
            raise TypeError('RandomCropFlip: `seed` must be an int or None, '
                            f'got {seed!r}.')
        mean, std = _channels('mean', mean), _channels('std', std)
        if len(mean) != len(std) or (std <= 0).any():
            raise ValueError(
                "RandomCropFlip: `mean` and `std` must be the data "
                "preprocessor's, of one length, with `std` > 0; got "
                f'{mean.tolist()} and {std.tolist()}.')
        self.padding = int(padding)
        self.flip_prob = float(flip_prob)
        self.seed = seed
        # a zero pixel after normalisation, as (0 - mean) / std
        self.pad_value = -mean / std
        self._generator: Optional[torch.Generator] = None

    def __call__(self, inputs: Tensor,
                 batch_score: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Optional[Tensor]]:
        """Crop and flip ``inputs`` (N, C, H, W) to (N, C, crop_h, crop_w);
        ``batch_score`` (N, num_classes) passes as float, as mmpretrain's
        batch augments return it."""
        top, left, flip = self.sample(inputs)
        if batch_score is not None:
            batch_score = batch_score.float()
        return self.crop_flip(inputs, top, left, flip), batch_score

    def sample(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Random ``top``, ``left`` (N, ) int64 and ``flip`` (N, ) bool on
        the device of ``inputs`` (N, C, H, W)."""
        self._check(inputs)
        n, _, h, w = inputs.shape
        device, generator = inputs.device, self._generator_on(inputs.device)
        p = self.padding
        crop_h, crop_w = self.crop_size
        top = torch.randint(
            h + 2 * p - crop_h + 1, (n, ), generator=generator, device=device)
        left = torch.randint(
            w + 2 * p - crop_w + 1, (n, ), generator=generator, device=device)
        flip = torch.rand(n, generator=generator,
                          device=device) < self.flip_prob
        return top, left, flip

    def crop_flip(self, inputs: Tensor, top: Tensor, left: Tensor,
                  flip: Tensor) -> Tensor:
        """The crops at ``top``, ``left`` (N, ) of the padded ``inputs``
        (N, C, H, W), flipped where ``flip`` (N, ) is True; (N, C, crop_h,
        crop_w)."""
        self._check(inputs)
        n, c, h, w = inputs.shape
        p = self.padding
        crop_h, crop_w = self.crop_size
        pad = self.pad_value.to(inputs).expand(c).view(1, c, 1, 1)
        padded = pad.expand(n, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p:p + h, p:p + w] = inputs
        device = inputs.device
        rows = top.view(n, 1) + torch.arange(crop_h, device=device)
        cols = left.view(n, 1) + torch.arange(crop_w, device=device)
        cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
        return padded[torch.arange(n, device=device).view(n, 1, 1, 1),
                      torch.arange(c, device=device).view(1, c, 1, 1),
                      rows.view(n, 1, crop_h, 1),
                      cols.view(n, 1, 1, crop_w)]

    def _check(self, inputs: Tensor) -> None:
        """Fail on a batch this augment cannot crop, saying what to do."""
        if inputs.dim() != 4:
            raise ValueError(
                'RandomCropFlip crops a batch (N, C, H, W), got shape '
                f'{tuple(inputs.shape)}. With a MultiView pipeline, give the '
                'model the dataset base\'s `multiview_preprocessor` '
                "(type='mmmcl.MultiViewDataPreprocessor', view_augment=...), "
                'which crops each view.')
        c, h, w = inputs.shape[1:]
        if len(self.pad_value) not in (1, c):
            raise ValueError(
                f'RandomCropFlip: `mean` and `std` have '
                f'{len(self.pad_value)} values, the batch {c} channels: '
                "give the data preprocessor's.")
        p = self.padding
        if h + 2 * p < self.crop_size[0] or w + 2 * p < self.crop_size[1]:
            raise ValueError(
                f'RandomCropFlip: `crop_size` {self.crop_size} exceeds the '
                f'padded images ({h + 2 * p}, {w + 2 * p}); lower '
                '`crop_size` or raise `padding`.')

    def _generator_on(self, device: torch.device
                      ) -> Optional[torch.Generator]:
        """The own generator on ``device`` (made and seeded at first use),
        or None for torch's global one."""
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed + get_rank())
        return self._generator

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, '
                f'padding={self.padding}, flip_prob={self.flip_prob}, '
                f'seed={self.seed})')


def _crop_size(value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``value`` as ``(h, w)`` of positive ints."""
    if isinstance(value, Integral):
        value = (value, value)
    if not isinstance(value, Sequence) or len(value) != 2 or not all(
            isinstance(v, Integral) and v > 0 for v in value):
        raise ValueError('RandomCropFlip: `crop_size` must be a positive int '
                         f'or an (h, w) pair of them, got {value!r}.')
    return int(value[0]), int(value[1])


def _channels(name: str, value: Sequence[float]) -> Tensor:
    """``value`` as a (C, ) float32 tensor (C >= 1), or a ValueError naming
    ``name``."""
    if not isinstance(value, Sequence) or not value or not all(
            isinstance(v, Real) for v in value):
        raise ValueError(
            f"RandomCropFlip: `{name}` must be the data preprocessor's, one "
            f'number per channel, got {value!r}.')
    return torch.tensor(value, dtype=torch.float32)
