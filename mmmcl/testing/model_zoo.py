"""The README's model-zoo table, built from the metafiles and result files.

One row per method (``configs/<method>/metafile.yml``), the CIFAR-100
ResNet-32 and ResNet-110 configs as columns:

- the published top-1 of each config and its source (the metafile's
  ``Results``, which ``tests/test_tools/test_mim.py`` holds equal to the
  method README's figures);
- links to the two configs and to the method README's "As the reference
  (CIFAR-100)" section, where it has one;
- the training cost per epoch, the median step of
  ``results/benchmarks/zoo_step_h200.json`` (the configs' batch of 128 on
  a lent H200) times the config's steps per epoch on CIFAR-100's 50,000
  training images;
- ours: the regime study of every method on the embedded data
  (``results/regime_study/zoo.json``), members' mean test top-1 over 3
  seeds, ramp-up off and on.

``python -m mmmcl.testing.model_zoo`` writes ``results/model_zoo.json``
(with its provenance; the README quotes its ``table``) and regenerates
the quoted blocks; ``tests/test_readme_provenance.py`` fails when the file
differs from what its sources give now.
"""
import argparse
import json
import math
import os.path as osp
import re
import sys
from typing import Dict, List, Optional

import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OUT = 'results/model_zoo.json'
COST = 'results/benchmarks/zoo_step_h200.json'
OURS = 'results/regime_study/zoo.json'
# method folders in the README's order: the method, its cohort relatives,
# the baseline, then the online-KD zoo
METHODS = ('lmcl', 'mcl', 'dml', 'baseline', 'one', 'cl_ilr', 'okddip',
           'kdcl', 'pcl', 'ffl')
BACKBONES = ('resnet32', 'resnet110')
CIFAR100_TRAIN = 50000
REFERENCE_HEADING = '## As the reference (CIFAR-100)'
REFERENCE_ANCHOR = '#as-the-reference-cifar-100'
SOURCE = re.compile(r'Published, not reproduced here: (?P<name>[^(]+?) '
                    r'\((?P<venue>[^;)]+)')


def _load(root: str, path: str) -> dict:
    with open(osp.join(root, path), encoding='utf-8') as f:
        return yaml.safe_load(f) if path.endswith('.yml') else json.load(f)


def cifar_model(meta: dict, backbone: str) -> Optional[dict]:
    """The metafile's CIFAR-100 model of one backbone (a pair of it for
    cohorts), or None."""
    pattern = re.compile(rf'_{backbone}(x2)?_1xb128-300e_cifar100$')
    found = [m for m in meta['Models'] if pattern.search(m['Name'])]
    return found[0] if found else None


def published(model: Optional[dict]) -> Dict[str, Optional[str]]:
    """The published top-1 of a config and its short source."""
    for result in (model or {}).get('Results', []):
        value = result['Metrics'].get('Top 1 Accuracy')
        if value is not None:
            m = SOURCE.match(result['Notes'])
            return dict(top1=f'{value:.2f}',
                        source=f'{m["name"]} ({m["venue"]})' if m else None)
    return dict(top1=None, source=None)


def steps_per_epoch(root: str, config: str) -> int:
    """Training steps of an epoch of a CIFAR-100 config on one GPU."""
    from mmengine.config import Config
    loader = Config.fromfile(osp.join(root, config)).train_dataloader
    batch = loader.batch_size
    sampler = loader.get('batch_sampler')
    if sampler and sampler.get('type') == 'ClassBalancedBatchSampler':
        return sampler.get('num_batches') or CIFAR100_TRAIN // batch
    if loader.get('drop_last'):
        return CIFAR100_TRAIN // batch
    return math.ceil(CIFAR100_TRAIN / batch)


def _mean_std(pair: List[float]) -> str:
    return f'{pair[0]:.2f} ± {pair[1]:.2f}'


def build(root: str = ROOT) -> dict:
    """The table and the figures it shows."""
    cost = _load(root, COST)
    cost_rows = {r['name']: r['median_s'] for r in cost['rows']}
    step_of = {config: cost_rows[name]
               for name, config in cost['configs'].items()}
    ours = {}
    for row in _load(root, OURS)['summary']:
        ours.setdefault(row['method'], {})[row['ramp']] = row['members']
    device = cost['provenance']['machine']['device']
    study = _load(root, OURS)['provenance']['machine']['device']

    header = ['method', 'ResNet-32: published top-1', 'ResNet-110: '
              'published top-1', 'published in', 'configs',
              'as the reference', f's/epoch, ResNet-32 ({device})',
              'ours: MNIST-5k ResNet-20, members, ramp-up off / on']
    rows, figures = [], {}
    for method in METHODS:
        meta = _load(root, f'configs/{method}/metafile.yml')
        collection = meta['Collections'][0]
        models = {b: cifar_model(meta, b) for b in BACKBONES}
        pub = {b: published(models[b]) for b in BACKBONES}
        sources = sorted({p['source'] for p in pub.values() if p['source']})
        configs = ', '.join(
            f'[{b.replace("resnet", "R-")}]({models[b]["Config"]})'
            for b in BACKBONES if models[b])
        readme = f'configs/{method}/README.md'
        with open(osp.join(root, readme), encoding='utf-8') as f:
            has_reference = REFERENCE_HEADING in f.read().split('\n')
        reference = f'[yes]({readme}{REFERENCE_ANCHOR})' \
            if has_reference else f'no ([README]({readme}))'
        r32 = models['resnet32']['Config'] if models['resnet32'] else None
        seconds = None
        if r32 in step_of:
            seconds = step_of[r32] * steps_per_epoch(root, r32)
        measured = ours.get(method, {})
        ours_cell = ' / '.join(
            _mean_std(measured[ramp]) if ramp in measured else '-'
            for ramp in ('off', 'sigmoid'))
        name = f'[{collection["Name"]}]({collection["Paper"]["URL"]})'
        rows.append([
            name, pub['resnet32']['top1'] or '-',
            pub['resnet110']['top1'] or '-', '; '.join(sources) or '-',
            configs, reference,
            f'{seconds:.0f}' if seconds is not None else '-', ours_cell
        ])
        figures[method] = dict(
            published={b: pub[b]['top1'] for b in BACKBONES},
            sources=sources, as_the_reference=has_reference,
            seconds_per_epoch=seconds, ours=measured)
    table = '\n'.join('| ' + ' | '.join(r) + ' |'
                      for r in [header, ['---'] * len(header)] + rows)
    note = (
        f'Published: top-1 (%) on CIFAR-100 as each method README quotes '
        f'it (not reproduced here; `-`: none published for that config). '
        f's/epoch: median training step of {COST} ({device}, batch 128, '
        f'random images) times the steps of a CIFAR-100 epoch; L-MCL\'s '
        f'normal steps only (its meta step every 50 iterations: '
        f'[benchmarks](docs/benchmarks.md)). Ours: {OURS} ({study}), test '
        f'top-1 (%) of the members, mean ± std over 3 seeds, 20 labelled '
        f'images a digit ([regime study](docs/regime_study.md)).')
    return dict(table=note + '\n\n' + table, sources=dict(
        metafiles=[f'configs/{m}/metafile.yml' for m in METHODS],
        cost=COST, ours=OURS), methods=figures)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=OUT)
    args = parser.parse_args(argv)
    from mmmcl.testing.readme_results import write_readmes
    from mmmcl.utils.provenance import write_result
    write_result(osp.join(ROOT, args.out), build(ROOT))
    for page in write_readmes(ROOT):
        print(f'rewrote {osp.relpath(page, ROOT)}')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
