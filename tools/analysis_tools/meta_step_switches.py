"""How far the reference's meta step departs from the exact one.

    python tools/analysis_tools/meta_step_switches.py [--config CONFIG]
        [--batch 32] [--threads 1]
        [--out results/benchmarks/meta_step_switches.json]

Builds the config's cohort in float64, takes one normal ``train_step`` on a
random batch of B/2 classes x 2, then computes on that batch the meta step's
hypergradient with ``momentum_adjoint='exact'`` and ``'reference'`` (the
authors' ``MetaSGD.meta_backward``). No finite difference: on a network of
this size the unrolled outer loss jumps wherever a ReLU's input crosses zero
in a virtual step's gradient (steps of 1e-2 within 1e-6 of phi), so the
exact hypergradient is checked against finite differences on the tests'
small cohorts instead. Writes the JSON with its provenance and a ``table``.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_loss import ROOT, build_model, make_batch  # noqa: E402

from mmmcl.models.distillers import cohort_meta_problem  # noqa: E402
from mmmcl.testing import train_progress  # noqa: E402
from mmmcl.utils.provenance import write_result  # noqa: E402
from mmmcl.utils.result_table import machine_note, markdown_table  # noqa

CONFIG = 'configs/lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py'


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def measure(config: str, batch_size: int) -> dict:
    torch.manual_seed(0)
    model, optim_wrapper = build_model(config, torch.device('cpu'))
    batch = make_batch(batch_size, num_classes=model.num_classes)
    with train_progress(batch_idx=1):  # normal step only
        model.train_step(batch, optim_wrapper)
    model.double()
    data = model.data_preprocessor(batch, True)
    inputs = data['inputs'].double()
    problem = cohort_meta_problem(model, inputs, data['data_samples'],
                                  optim_wrapper['cohort'])
    step = model.meta_step
    step.replay_bn = 'none'
    hyper = {}
    for adjoint in ('exact', 'reference'):
        step.momentum_adjoint = adjoint
        hyper[adjoint] = flat(step.hypergradient(problem).grads)
    exact, reference = hyper['exact'], hyper['reference']
    return dict(
        lr=problem.lrs[0],
        weight_decay=problem.weight_decays[0],
        hypergrad_norm_exact=exact.norm().item(),
        relative_difference=((reference - exact).norm() /
                             exact.norm()).item(),
        cosine=torch.nn.functional.cosine_similarity(
            reference, exact, dim=0).item())


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument(
        '--out',
        default=osp.join('results', 'benchmarks', 'meta_step_switches.json'))
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    row = measure(osp.join(ROOT, args.config), args.batch)
    table = markdown_table(
        [f'meta-step hypergradient of {osp.basename(args.config)}, float64, '
         f"B={args.batch}, lr {row['lr']:g}, wd {row['weight_decay']:g}, "
         f'after one normal step; {machine_note("cpu")}', 'value'],
        [['||h_reference - h_exact|| / ||h_exact||',
          f"{row['relative_difference']:.2e}"],
         ['cosine(h_reference, h_exact)', f"{row['cosine']:.6f}"],
         ['||h_exact||', f"{row['hypergrad_norm_exact']:.4g}"]])
    path = write_result(
        args.out,
        dict(table=table, settings=dict(config=args.config,
                                        batch=args.batch),
             **row),
        argv=[__file__] + list(sys.argv[1:] if argv is None else argv))
    print(f'{table}\n-> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
