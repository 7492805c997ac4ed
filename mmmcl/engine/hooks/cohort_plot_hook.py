import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmmcl.models.distillers import MatchingWeightsModel, require
from mmmcl.models.utils import cohort_blocks, group_offsets
from mmmcl.registry import HOOKS

def _render(fig: Figure) -> np.ndarray:
    """Draw a figure with Agg (no pyplot, no display); RGB (H, W, 3) uint8."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _history(log_scalars: dict, prefix: str, keep) -> Dict[str, np.ndarray]:
    """Logged values of the keys ``prefix + name`` with ``keep(name)``."""
    curves = {}
    for key in sorted(log_scalars):
        name = key[len(prefix):]
        if key.startswith(prefix) and keep(name):
            values = np.asarray(log_scalars[key].data[0], dtype=np.float64)
            if values.size:
                curves[name] = values
    return curves


def _plot_curves(ax, curves: Dict[str, np.ndarray], xlabel: str) -> None:
    """One line per curve, the last values aligned; log y when all values
    are positive and span more than a decade."""
    length = max(len(v) for v in curves.values())
    for name, values in curves.items():
        x = np.arange(length - len(values), length) + 1
        style = dict(color='black', linewidth=1.2) if name == 'loss' \
            else dict(linewidth=0.8)
        if len(values) <= 30:  # a few points (validations): show them
            style['marker'] = '.'
        ax.plot(x, values, label=name, **style)
    every = np.concatenate(list(curves.values()))
    if every.min() > 0 and every.max() > 10 * every.min():
        ax.set_yscale('log')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize='x-small', ncol=2)


@HOOKS.register_module()
class CohortPlotHook(Hook):
    """Saves loss curves and the learned layer-matching weights as images.

    At every checkpoint (same ``interval`` and ``by_epoch`` as the
    ``CheckpointHook``) and at the end of training, two images go through
    ``runner.visualizer`` (with ``LocalVisBackend``:
    ``<work_dir>/<timestamp>/vis_data/vis_image/{name}_{step}.png``, step
    counting finished epochs or iterations):

    - ``loss_curves``: the logged ``train/*loss*`` terms per iteration, the
      members' CE terms (and the total ``loss``) in one panel, the
      contrastive, KD and aggregator terms in another, and the
      ``val/*accuracy/top1`` metrics per validation when there are any.
    - ``matching_weights``: mean weight w of every block (i, k, j, z) since
      the previous image (rows net i / stage k, columns net j / stage z,
      stages counted from 1; same-net cells blank). Only when the model
      reports them (:class:`~mmmcl.models.distillers.MatchingWeightsModel`:
      a cohort with a meta-network, L-MCL); the numbers of the last heatmap
      are also written to ``<work_dir>/matching_weights.json``.

    Nothing is drawn before a loss has been logged.

    Args:
        interval (int): Plot every ``interval`` epochs (or iterations);
            0 or less plots only at the end. Defaults to 1.
        by_epoch (bool): Count epochs, else iterations. Defaults to True.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1, by_epoch: bool = True) -> None:
        self.interval = interval
        self.by_epoch = by_epoch

    def before_train(self, runner) -> None:
        """Refuse a model without the interface before the first plot."""
        require(runner.model, MatchingWeightsModel, 'CohortPlotHook')

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.interval > 0 and self.every_n_epochs(
                runner, self.interval):
            self.plot(runner, step=runner.epoch + 1)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.by_epoch and self.interval > 0 and \
                self.every_n_train_iters(runner, self.interval):
            self.plot(runner, step=runner.iter + 1)

    def after_train(self, runner) -> None:
        self.plot(runner, step=runner.epoch if self.by_epoch else runner.iter)

    def plot(self, runner, step: int) -> None:
        """Draw both images now (the heatmap only if there are new
        weights) and, with them, write ``matching_weights.json``."""
        # on every rank: the call also starts the next running mean
        weights = require(runner.model, MatchingWeightsModel,
                          'CohortPlotHook').mean_matching_weights()
        if not is_main_process():
            return
        loss_image = self.loss_curves(runner.message_hub.log_scalars)
        if loss_image is not None:
            runner.visualizer.add_image('loss_curves', loss_image, step=step)
        if weights is not None:
            image, record = self.matching_weights(weights.num_stages,
                                                  weights.weights.tolist())
            runner.visualizer.add_image('matching_weights', image, step=step)
            record.update(step=step, by_epoch=self.by_epoch)
            with open(osp.join(runner.work_dir, 'matching_weights.json'),
                      'w') as f:
                json.dump(record, f, indent=1)

    @staticmethod
    def panels(log_scalars: dict) -> List[Tuple[Dict[str, np.ndarray], str,
                                                str]]:
        """The non-empty panels of ``loss_curves``.

        Args:
            log_scalars (dict): ``runner.message_hub.log_scalars``, name to
                :class:`mmengine.logging.HistoryBuffer`.

        Returns:
            list[tuple]: ``(curves, title, x label)``, curves mapping a
            name without its ``train/`` or ``val/`` prefix to its values;
            empty before any loss is logged.
        """
        losses = _history(log_scalars, 'train/', lambda n: 'loss' in n)
        if not losses:
            return []
        # the peers' own CE (``peer{p}[.s{s}].loss_ce``) and the total
        ce = {n: v for n, v in losses.items() if n == 'loss' or (
            n.startswith('peer') and n.endswith('.loss_ce'))}
        others = {n: v for n, v in losses.items() if n not in ce}
        val = _history(log_scalars, 'val/',
                       lambda n: n.endswith('accuracy/top1'))
        panels = [(ce, "the peers' CE and the total", 'iteration'),
                  (others, 'teachers, KD and terms', 'iteration'),
                  (val, 'validation top-1 (%)', 'validation')]
        return [p for p in panels if p[0]]

    @classmethod
    def loss_curves(cls, log_scalars: dict) -> Optional[np.ndarray]:
        """Draw :meth:`panels` one above the other.

        Returns:
            np.ndarray | None: RGB image (H, W, 3), uint8; None before any
            loss is logged.
        """
        panels = cls.panels(log_scalars)
        if not panels:
            return None
        fig = Figure(figsize=(8, 3 * len(panels)), dpi=100)
        for row, (curves, title, xlabel) in enumerate(panels):
            ax = fig.add_subplot(len(panels), 1, row + 1)
            _plot_curves(ax, curves, xlabel)
            ax.set_title(title, fontsize='small')
        fig.tight_layout()
        return _render(fig)

    @staticmethod
    def matching_weights(num_stages: List[int],
                         weights: List[float]) -> tuple:
        """Heatmap of the block weights, and the same numbers as a dict.

        Args:
            num_stages (list[int]): Stages S_m of each member.
            weights (list[float]): One weight per block, ordered as
                :func:`mmmcl.models.utils.cohort_blocks`.

        Returns:
            tuple: RGB image (H, W, 3) uint8 and ``dict(groups=[labels],
            blocks=[dict(row, col, weight)], matrix=...)``, ``matrix`` the
            heatmap's (G, G) rows (None in same-net cells).
        """
        blocks = cohort_blocks(num_stages)
        if len(weights) != len(blocks):
            raise ValueError(f'{len(blocks)} blocks for stages {num_stages} '
                             f'but {len(weights)} matching weights.')
        labels = [f'net{m}/s{s + 1}' for m, num in enumerate(num_stages)
                  for s in range(num)]
        offsets = group_offsets(num_stages)
        matrix = np.full((len(labels), len(labels)), np.nan)
        record = []
        for (i, k, j, z), w in zip(blocks, weights):
            row, col = offsets[i] + k, offsets[j] + z
            matrix[row, col] = w
            record.append(dict(row=labels[row], col=labels[col], weight=w))

        size = 2.5 + 0.6 * len(labels)
        fig = Figure(figsize=(size + 1, size), dpi=100)
        ax = fig.add_subplot()
        im = ax.imshow(np.ma.masked_invalid(matrix), cmap='viridis')
        fig.colorbar(im, ax=ax, label='mean w')
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha='right')
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel('(j, z)')
        ax.set_ylabel('(i, k)')
        ax.set_title('layer-matching weights', fontsize='small')
        if len(labels) <= 12:
            middle = (np.nanmin(matrix) + np.nanmax(matrix)) / 2
            for (row, col), w in np.ndenumerate(matrix):
                if not np.isnan(w):
                    ax.text(col, row, f'{w:.2f}', ha='center', va='center',
                            fontsize='x-small',
                            color='black' if w > middle else 'white')
        fig.tight_layout()
        cells = [[None if np.isnan(w) else float(w) for w in row]
                 for row in matrix]
        return _render(fig), dict(groups=labels, blocks=record, matrix=cells)
