"""Record what every config builds and computes, as the config test reads it.

    python tools/misc/make_config_fixtures.py [--out FILE]

For every training config under ``configs/`` (the transfer configs for
parameter counts only): the parameter and buffer counts of its model and,
for a classification config, its losses on a fixed batch
(:func:`mmmcl.testing.config_fixtures.measure_config`), into ``FILE``
(default ``tests/data/config_fixtures.json``).
``tests/test_configs/test_config_fixtures.py`` compares every config against
the file: rerun this only where a change of a model is meant.
"""
import argparse
import json
import os.path as osp

import torch
from mmengine.logging import MMLogger

from mmmcl.testing.config_fixtures import config_files, measure_config
from mmmcl.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--out', default=osp.join(ROOT, 'tests/data/config_fixtures.json'))
    args = parser.parse_args()
    torch.set_num_threads(1)
    MMLogger.get_instance('make_config_fixtures', log_level='WARNING')
    register_all_modules()
    configs = osp.join(ROOT, 'configs')
    fixtures = {
        osp.relpath(path, configs): measure_config(path)
        for group in config_files(configs).values() for path in group
    }
    with open(args.out, 'w') as f:
        json.dump(fixtures, f, indent=1, sort_keys=True)
        f.write('\n')
    print(f'{len(fixtures)} configs -> {args.out}')


if __name__ == '__main__':
    main()
