"""L-MCL's meta step: time and extra peak memory, beside the authors' code.

    python tools/analysis_tools/benchmark_meta_step.py [--config CONFIG]
        [--batch 64] [--virtual-steps 1 2 3] [--device cpu] [--threads 1]
        [--out results/benchmarks/meta_step_memory.json]

Every measurement runs in a fresh process: it builds the config's cohort,
takes one normal ``train_step`` (the meta step not due) on a random batch of
B/2 classes x 2, then runs one meta step on that batch, either mmmcl's
(``CohortDistiller.meta_update``: first-order virtual steps and a reverse
replay) or the authors' (``mmmcl.testing.lmcl_reference``: ``MetaSGD``'s
virtual steps with state snapshots and ``meta_backward``, on the same
modules), with K virtual contrastive steps. "extra" is the peak during the
meta step minus the memory just before it: on the CPU the process's peak
resident set (``VmHWM``, reset through ``/proc/self/clear_refs``), on CUDA
``torch.cuda.max_memory_allocated``. Writes the JSON with its provenance and
a ``table``.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_loss import ROOT, build_model, make_batch  # noqa: E402

from mmmcl.testing import train_progress  # noqa: E402
from mmmcl.utils.provenance import write_result  # noqa: E402
from mmmcl.utils.result_table import machine_note, markdown_table  # noqa

CONFIG = 'configs/lmcl/lmcl_resnet32x2_1xb128-300e_cifar100.py'
IMPLEMENTATIONS = ('mmmcl', 'authors')


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


class PeakMemory:
    """Peak memory of a block beyond what was in use when it started, MiB."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset VmHWM to the current resident set
            self.start = _status_kib('VmRSS') * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _status_kib('VmHWM') * 1024
        self.extra_mib = (peak - self.start) / 2**20


def measure(config: str, implementation: str, virtual_steps: int,
            batch_size: int, device: torch.device) -> dict:
    """One meta step of ``implementation`` after one normal step."""
    from mmmcl.testing.lmcl_reference import ReferenceLMCL
    torch.manual_seed(0)
    model, optim_wrapper = build_model(config, device)
    model.meta_step.virtual_steps = virtual_steps
    batch = make_batch(batch_size, num_classes=model.num_classes)
    start = time.perf_counter()
    with train_progress(batch_idx=1):  # normal step only
        model.train_step(batch, optim_wrapper)
    normal_s = time.perf_counter() - start
    data = model.data_preprocessor(batch, True)
    labels = torch.cat([s.gt_label for s in data['data_samples']]).to(device)
    cohort, meta = optim_wrapper['cohort'], optim_wrapper['meta']
    if implementation == 'mmmcl':
        run = lambda: model.meta_update(  # noqa: E731
            data['inputs'], data['data_samples'], cohort, meta)
    else:
        contrast = model.terms.contrast
        weights = contrast.loss_weights
        reference = ReferenceLMCL(
            model, lr=cohort.get_lr()['lr'][0],
            weight_decay=cohort.optimizer.param_groups[0]['weight_decay'],
            alpha=weights['vcl'], gamma=weights['soft_vcl'],
            beta=weights['icl'], lam=weights['soft_icl'],
            tau=contrast.contrast_loss.tau,
            kd_T=model.distillation.kd_loss.temperature,
            times=virtual_steps)
        run = lambda: reference.meta_optimisation(data['inputs'], labels)  # noqa
    with PeakMemory(device) as peak:
        start = time.perf_counter()
        run()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        meta_s = time.perf_counter() - start
    return dict(implementation=implementation, virtual_steps=virtual_steps,
                normal_step_s=normal_s, meta_step_s=meta_s,
                extra_peak_mib=peak.extra_mib)


def run_in_subprocess(args: argparse.Namespace, implementation: str,
                      virtual_steps: int) -> dict:
    command = [
        sys.executable, osp.abspath(__file__), '--worker', implementation,
        str(virtual_steps), '--config', args.config, '--batch',
        str(args.batch), '--device', args.device, '--threads',
        str(args.threads)
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True,
                         cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--virtual-steps', type=int, nargs='+',
                        default=[1, 2, 3])
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--worker', nargs=2, metavar=('IMPL', 'K'),
                        help=argparse.SUPPRESS)
    parser.add_argument(
        '--out',
        default=osp.join('results', 'benchmarks', 'meta_step_memory.json'))
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        row = measure(osp.join(ROOT, args.config), args.worker[0],
                      int(args.worker[1]), args.batch,
                      torch.device(args.device))
        print(json.dumps(row))
        return 0
    rows = []
    for k in args.virtual_steps:
        for implementation in IMPLEMENTATIONS:
            rows.append(run_in_subprocess(args, implementation, k))
            print(json.dumps(rows[-1]), flush=True)
    table = markdown_table(
        [f'meta step of {osp.basename(args.config)}, B={args.batch}, '
         f'{args.device}, {args.threads} thread(s), one fresh process '
         f'each; {machine_note(args.device)}', 'K', 'normal step (s)',
         'meta step (s)', 'meta step extra peak (MiB)'],
        [[r['implementation'], r['virtual_steps'],
          f"{r['normal_step_s']:.2f}", f"{r['meta_step_s']:.2f}",
          f"{r['extra_peak_mib']:.0f}"] for r in rows])
    settings: Dict[str, object] = dict(
        config=args.config, batch=args.batch, device=args.device,
        threads=args.threads)
    path = write_result(args.out, dict(table=table, settings=settings,
                                       rows=rows),
                        argv=[__file__] + list(sys.argv[1:] if argv is None
                                               else argv))
    print(f'{table}\n-> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
