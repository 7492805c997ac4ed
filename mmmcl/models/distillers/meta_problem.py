"""What L-MCL's meta step differentiates, built from a cohort's parts."""
from typing import Dict

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from torch import Tensor
from torch.func import functional_call

from .meta_step import MetaProblem, sgd_hyperparams


def cohort_meta_problem(model: nn.Module, inputs: Tensor, data_samples: list,
                        wrapper: OptimWrapper) -> MetaProblem:
    """The meta step's problem on this batch (paper section 6).

    theta: the parameters of the peers and of the terms (the embedding
    heads), with the lr and weight decay of their group in ``wrapper``, and
    their buffers; the inner objective is the terms' losses weighted by the
    meta-network phi (``model.meta_net``), the outer one the CE of every
    stage of every peer (``model.ce_losses``). The teachers are not in
    theta. With carried virtual buffers (:class:`MetaStep`) the terms'
    memory banks are buffers too, which each inner step writes (the
    reference's ``Sup_MCL_Loss_Meta``).

    Args:
        model (CohortDistiller): The cohort, after its normal update.
        inputs (Tensor): The preprocessed batch, (B, 3, H, W).
        data_samples (list): The batch's samples (labels, bank rows).
        wrapper (OptimWrapper): The ``cohort`` optimizer's wrapper.
    """
    labels = torch.cat([s.gt_label for s in data_samples]).to(inputs.device)
    theta_parts = [model.peers, *model.terms.values()]
    bank_ids = {
        id(b)
        for term in model.terms.values() for b in term.named_banks().values()
    }
    theta_ids = {id(p) for part in theta_parts for p in part.parameters()}
    buffer_ids = {
        id(b)
        for part in theta_parts for b in part.buffers()
    } - bank_ids
    theta = {
        n: p
        for n, p in model.named_parameters()
        if id(p) in theta_ids and p.requires_grad
    }
    buffers = {n: b for n, b in model.named_buffers() if id(b) in buffer_ids}
    lrs, weight_decays = sgd_hyperparams(theta, wrapper)
    phi = [p for p in model.meta_net.parameters() if p.requires_grad]
    # each term's banks: name in the model -> name in the term
    banks: Dict[str, Dict[str, str]] = {}
    if model.meta_step.carries_buffers:
        model_name = {id(b): n for n, b in model.named_buffers()}
        for name, term in model.terms.items():
            named = term.named_banks()
            banks[name] = {model_name[id(b)]: n for n, b in named.items()}
            buffers.update({model_name[id(b)]: b for b in named.values()})
    targets = {
        name: term.target(data_samples, labels)
        for name, term in model.terms.items()
    }

    def features(params: dict, state: dict):
        return functional_call(model, (params, state), (inputs, ),
                               dict(mode='tensor'))

    def inner(params: dict, state: dict) -> Tensor:
        outputs = features(params, state)
        weights = model.meta_net(outputs.feats_by_stage())
        total = 0
        for name, term in model.terms.items():
            own = {n: state[m] for m, n in banks.get(name, {}).items()}
            embeddings = outputs.embeddings[name]
            total = total + sum(
                term.loss(embeddings, targets[name], weights,
                          model.ramp_factors(term.names),
                          own or None).values())
            if own:  # the reference's write, out of place
                written = term.written_banks(embeddings, targets[name], own)
                for m, n in banks[name].items():
                    state[m] = written[n]
        return total

    def outer(params: dict, state: dict) -> Tensor:
        outputs = features(params, state)
        return sum(model.ce_losses(outputs, labels).values())

    return MetaProblem(theta, lrs, weight_decays, buffers, inner, outer, phi)
