from mmengine.hooks import Hook

from mmmcl.models.distillers import BankRowsModel, require
from mmmcl.registry import HOOKS


@HOOKS.register_module()
class ContrastIndexHook(Hook):
    """The data side of the memory-bank recipe.

    Before training it checks that the model's memory banks
    (:class:`~mmmcl.models.distillers.BankRowsModel`) have one row per
    training item. Before each epoch it passes the epoch to the training
    set's ``set_epoch`` (:class:`mmmcl.datasets.ContrastIndexDataset`, at
    any depth of dataset wrappers), so the negatives change every epoch and
    come back exactly on resume. A model without banks and a training set
    without ``set_epoch`` leave it idle, so it stays in every cohort
    runtime config.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        num_samples = require(runner.model, BankRowsModel,
                              'ContrastIndexHook').bank_rows()
        if num_samples is None:
            return
        length = len(runner.train_dataloader.dataset)
        if num_samples != length:
            raise ValueError(
                f'The memory banks have {num_samples} rows '
                '(`num_samples` of the contrast loss of a term, e.g. '
                'model.terms.contrast.contrast_loss.num_samples) but the '
                f'training set has {length} items: set it to {length} (one '
                'bank row per item).')

    def before_train_epoch(self, runner) -> None:
        dataset = runner.train_dataloader.dataset
        while dataset is not None and not hasattr(dataset, 'set_epoch'):
            dataset = getattr(dataset, 'dataset', None)
        if dataset is not None:
            dataset.set_epoch(runner.epoch)
