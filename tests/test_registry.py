"""mmmcl's registry nodes: children of mmpretrain's, found from a config."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmpretrain import registry as mmpretrain_registry

import mmmcl.registry as mmmcl_registry

REPO = Path(__file__).resolve().parents[1]

# One mmmcl class per registry, to resolve as ``'mmmcl.<Class>'``. None: no
# mmmcl class is registered there yet (skipped, with the reason below).
EXAMPLES = {
    'MODELS': 'CifarResNet',
    'DATASETS': 'MNIST5k',
    'DATA_SAMPLERS': 'ClassBalancedBatchSampler',
    'HOOKS': 'CohortProgressHook',
    'OPTIM_WRAPPER_CONSTRUCTORS': 'CohortOptimWrapperConstructor',
    'METRICS': 'CohortAccuracy',
    'RUNNERS': None,
    'RUNNER_CONSTRUCTORS': None,
    'LOOPS': None,
    'LOG_PROCESSORS': None,
    'OPTIMIZERS': None,
    'OPTIM_WRAPPERS': None,
    'PARAM_SCHEDULERS': None,
    'MODEL_WRAPPERS': 'CohortDistributedDataParallel',
    'TRANSFORMS': None,
    'WEIGHT_INITIALIZERS': None,
    'BATCH_AUGMENTS': 'RandomCropFlip',
    'TASK_UTILS': None,
    'EVALUATORS': None,
    'VISUALIZERS': None,
    'VISBACKENDS': None,
}

# Runs in a fresh interpreter: imports only mmengine and mmmcl.registry, then
# asks mmpretrain's node of each registry for 'mmmcl.<Class>'. Prints JSON.
RESOLVE = r'''
import json, sys
import mmengine  # noqa: F401
import mmmcl.registry as R
from mmpretrain import registry as P

examples = json.loads(sys.argv[1])
preloaded = sorted(m for m in sys.modules if m.startswith('mmmcl.'))
found = {}
for name, cls_name in examples.items():
    try:
        cls = getattr(P, name).get('mmmcl.' + cls_name)
        found[name] = None if cls is None else (cls.__module__, cls.__name__)
    except Exception as e:
        found[name] = f'{type(e).__name__}: {e}'
built = P.MODELS.build(dict(type='mmmcl.CifarResNet', depth=8))
print(json.dumps(dict(preloaded=preloaded, found=found,
                      built=type(built).__module__)))
'''


def test_every_registry_is_a_child_of_mmpretrain():
    assert mmmcl_registry.__all__, 'mmmcl.registry exports no registry'
    assert sorted(EXAMPLES) == sorted(mmmcl_registry.__all__), \
        'EXAMPLES must list exactly the registries of mmmcl.registry'
    for name in mmmcl_registry.__all__:
        node = getattr(mmmcl_registry, name)
        parent = getattr(mmpretrain_registry, name)
        assert node.parent is parent, name
        assert node.name == parent.name, name
        assert node.scope == 'mmmcl', name
        assert parent.children.get('mmmcl') is node, name
        locations = node._locations
        assert locations and all(
            loc.startswith('mmmcl.') for loc in locations), (name, locations)


@pytest.fixture(scope='module')
def resolved():
    """Resolve every example in one fresh interpreter."""
    examples = {k: v for k, v in EXAMPLES.items() if v is not None}
    proc = subprocess.run(
        [sys.executable, '-c', RESOLVE,
         json.dumps(examples)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cases() -> list:
    cases = []
    for name, cls_name in EXAMPLES.items():
        marks = [] if cls_name else [
            pytest.mark.skip(
                reason=f'no mmmcl class is registered in {name} yet')
        ]
        cases.append(pytest.param(name, cls_name, marks=marks, id=name))
    return cases


@pytest.mark.parametrize('name,cls_name', _cases())
def test_mmmcl_type_resolves_without_import(resolved, name, cls_name):
    locations = getattr(mmmcl_registry, name)._locations
    # importing mmmcl.registry alone does not import the classes: the
    # registry's ``locations`` must have done it
    assert not set(locations) & set(resolved['preloaded']), (
        resolved['preloaded'])
    found = resolved['found'][name]
    assert isinstance(found, list), (
        f"mmpretrain's {name}.get('mmmcl.{cls_name}') gave {found!r}")
    module, got_name = found
    assert got_name == cls_name
    assert any(module.startswith(loc) for loc in locations), module


def test_build_from_config_dict(resolved):
    assert resolved['built'].startswith('mmmcl.models')
