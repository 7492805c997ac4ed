"""What hooks, wrappers and tools need from a model, declared.

Each caller asks for one small interface with :func:`require`, which
raises naming the model's type, what it lacks and the caller, instead of
switching a feature off when an attribute is missing.
:class:`~mmmcl.models.CohortDistiller` implements every model interface
here (answering None where a method has no meta-network or memory bank)
and asks its own parts for theirs: the peers (:class:`CohortPeers`), the
terms (:class:`CohortTerm`) and a term's contrast loss
(:class:`ContrastLoss`).
"""
import inspect
from typing import (Any, Callable, Dict, List, NamedTuple, Optional,
                    Protocol, Tuple, Union, runtime_checkable)

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor


class MatchingWeights(NamedTuple):
    """Mean layer-matching weights of a cohort, one per block.

    Attributes:
        num_stages (list[int]): Stages S_m of each member.
        weights (Tensor): One weight per block, ordered as
            :func:`mmmcl.models.utils.cohort_blocks`, shape (num_blocks, ),
            on the CPU.
    """
    num_stages: List[int]
    weights: Tensor


@runtime_checkable
class MetaModuleModel(Protocol):
    """A model whose meta-network has an optimizer of its own
    (:class:`~mmmcl.engine.CohortOptimWrapperConstructor`)."""

    def meta_module(self) -> Optional[nn.Module]:
        """The meta-network, a direct child of the model; None when the
        model has no meta step."""


@runtime_checkable
class MatchingWeightsModel(Protocol):
    """A model that reports its learned layer-matching weights
    (:class:`~mmmcl.engine.CohortPlotHook`)."""

    def mean_matching_weights(self) -> Optional[MatchingWeights]:
        """The mean weights since the previous call, which starts a new
        mean; None without a meta-network or a batch since that call."""


@runtime_checkable
class BankRowsModel(Protocol):
    """A model that may hold memory banks of one row per training item
    (:class:`~mmmcl.engine.ContrastIndexHook`)."""

    def bank_rows(self) -> Optional[int]:
        """Rows of each memory bank; None without memory banks."""


@runtime_checkable
class NumClassesModel(Protocol):
    """A classifier cohort (:class:`~mmmcl.engine.CohortSanityHook`)."""

    num_classes: int


@runtime_checkable
class DistributedStepModel(Protocol):
    """A model that runs its own train step under
    :class:`~mmmcl.engine.CohortDistributedDataParallel`."""

    def ddp_ignored_names(self) -> List[str]:
        """Names of the parameters and buffers DDP must leave alone: not in
        the loss forward's graph, or kept equal on every rank by the
        model itself."""

    def optim_wrappers(
        self, optim_wrapper: Union[OptimWrapper, OptimWrapperDict]
    ) -> Tuple[OptimWrapper, Optional[OptimWrapper]]:
        """The wrapper of the loss forward's parameters and, with a meta
        step, the meta-network's (None without one)."""

    def train_step(self,
                   data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict],
                   run_forward: Optional[Callable] = None
                   ) -> Dict[str, Tensor]:
        """One training step with the loss forward run by
        ``run_forward(data, mode='step')``."""


@runtime_checkable
class CohortPeers(Protocol):
    """The peers of a :class:`~mmmcl.models.CohortDistiller`
    (``model.peers``: ``IndependentPeers``, ``BranchedClassifier``)."""

    num_peers: int

    def forward(self, inputs: Any, with_stages: bool) -> Any:
        """The peers' :class:`~mmmcl.models.utils.PeerOutputs`."""

    def head(self, peer: int) -> nn.Module:
        """Peer ``peer``'s head (its ``loss_module`` is the peer's CE)."""

    def stage_channels(self) -> List[List[int]]:
        """``[i][s]``: the pooled width of every stage of every peer."""

    def init_as_reference(self) -> None:
        """The classifiers initialised as the reference codes leave
        them (``head_init='reference'``)."""

    def backbone_state_dict(self, peer: int) -> Dict[str, Tensor]:
        """Peer ``peer``'s plain backbone weights (the export)."""


@runtime_checkable
class CohortTerm(Protocol):
    """A loss term of a :class:`~mmmcl.models.CohortDistiller` on the
    peers' stage features (``model.terms``: ``MutualContrastTerm``)."""

    #: the names of its losses, ``loss_{name}``, which ``loss_ramp`` ramps
    names: Tuple[str, ...]

    def forward(self, stage_feats: List[List[Tensor]]) -> Any:
        """What the term embeds of the features ``[i][s]``."""

    def target(self, data_samples: list, labels: Tensor) -> Tensor:
        """What its loss compares against on this batch."""

    def loss(self, embeddings: Any, target: Tensor,
             weights: Optional[Tensor],
             factors: Optional[Dict[str, Union[float, Tensor]]],
             banks: Optional[Dict[str, Tensor]]) -> Dict[str, Tensor]:
        """Its losses, weighted by the meta-network's block weights and
        ramped by ``factors``."""

    def bank_update(self, embeddings: Any,
                    target: Tensor) -> Optional[Callable[[], dict]]:
        """The post-update write of its memory banks (None without)."""

    def bank_rows(self) -> Optional[int]:
        """Rows of each memory bank; None without memory banks."""

    def named_banks(self) -> Dict[str, Tensor]:
        """Its memory banks by name (none without)."""

    def written_banks(self, embeddings: Any, target: Tensor,
                      banks: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """``banks`` after this step's write, out of place."""


@runtime_checkable
class ContrastLoss(Protocol):
    """The contrast loss of a :class:`~mmmcl.models.MutualContrastTerm`."""

    #: True: memory banks (targets are bank rows ``contrast_idx``, the
    #: banks are updated after the step); False: in-batch negatives
    #: (targets are the labels).
    uses_banks: bool


def _members(interface: type) -> Dict[str, Optional[List[str]]]:
    """Each member of a protocol: a method's parameter names after
    ``self``, or None for an attribute."""
    members: Dict[str, Optional[List[str]]] = dict.fromkeys(
        vars(interface).get('__annotations__', {}))
    for name, value in vars(interface).items():
        if inspect.isfunction(value) and not name.startswith('_'):
            members[name] = list(inspect.signature(value).parameters)[1:]
    return members


def missing_members(obj: Any, interface: type) -> List[str]:
    """What ``obj`` lacks of ``interface``: absent attributes and methods,
    and methods without a parameter the interface passes, e.g.
    ``['`bank_rows()`', '`train_step(..., run_forward)`']``."""
    missing = []
    for name, params in _members(interface).items():
        if params is None:
            if not hasattr(obj, name):
                missing.append(f'`{name}`')
            continue
        method = getattr(obj, name, None)
        if not callable(method):
            missing.append(f'`{name}()`')
            continue
        accepted = inspect.signature(method).parameters
        if any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            continue
        lacking = [p for p in params if p not in accepted]
        if lacking:
            missing.append(f'`{name}(..., {", ".join(lacking)})`')
    return missing


def require(model: Any,
            interface: type,
            caller: str,
            fix: str = "or use one of mmmcl's distillers, which do") -> Any:
    """``model`` once it is known to implement ``interface``.

    Args:
        model (nn.Module): The model, or an MMEngine model wrapper of it.
        interface (type): A protocol of this module.
        caller (str): Who needs it, named in the error.
        fix (str): The alternative the error offers besides implementing
            the interface. Defaults to using one of mmmcl's distillers.

    Returns:
        nn.Module: The model, unwrapped.

    Raises:
        TypeError: Names the model's type, what it lacks, the caller and
            the fix.
    """
    if is_model_wrapper(model):
        model = model.module
    missing = missing_members(model, interface)
    if missing:
        name = type(model).__name__
        raise TypeError(
            f'{caller} needs {interface.__name__}, but {name} '
            f'lacks {", ".join(missing)}: implement it in {name} (see '
            f'{interface.__module__}.{interface.__name__}) {fix}.')
    return model
