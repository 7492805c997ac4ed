from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmcl.registry import HOOKS


@HOOKS.register_module()
class ContrastIndexHook(Hook):
    """The data side of the memory-bank recipe.

    Before training, when the model's contrast loss has memory banks, it
    checks that they have one row per training item. Before each epoch it
    passes the epoch to the training set's ``set_epoch``
    (:class:`mmmcl.datasets.ContrastIndexDataset`, at any depth of dataset
    wrappers), so the negatives change every epoch and come back exactly on
    resume. Without banks or such a dataset it does nothing, so it can stay
    in every runtime config.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        num_samples = getattr(
            getattr(model, 'contrast_loss', None), 'num_samples', None)
        if num_samples is None:
            return
        length = len(runner.train_dataloader.dataset)
        if num_samples != length:
            raise ValueError(
                f'model.contrast_loss.num_samples={num_samples} but the '
                f'training set has {length} items: set '
                f'`model.contrast_loss.num_samples={length}` (one bank row '
                'per item).')

    def before_train_epoch(self, runner) -> None:
        dataset = runner.train_dataloader.dataset
        while dataset is not None and not hasattr(dataset, 'set_epoch'):
            dataset = getattr(dataset, 'dataset', None)
        if dataset is not None:
            dataset.set_epoch(runner.epoch)
