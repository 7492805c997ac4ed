"""mmmcl's registry nodes, each a child of mmpretrain's.

A config with ``default_scope='mmmcl'`` or a type ``'mmmcl.X'`` imports the
subpackage named in ``locations`` by itself, so tools never need to call
:func:`mmmcl.utils.register_all_modules`. Types not found in ``mmmcl`` are
looked up in the parent (mmpretrain, then mmengine).

mmmcl's nodes are grandchildren of MMEngine's roots, and
``Registry.get('mmmcl.X')`` only searches the asking node's children and
the root's direct children: ``'mmmcl.X'`` resolves under the ``mmmcl`` and
``mmpretrain`` scopes, not under ``mmdet`` or ``mmseg``. There, name the
scope of the node instead, which searches the whole tree:
``dict(_scope_='mmmcl', type='CifarResNet', ...)``.
"""
from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain_registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS', 'TASK_UTILS',
    'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS'
]


def _child(name: str, location: str) -> Registry:
    parent = getattr(mmpretrain_registry, name)
    return Registry(
        parent.name, parent=parent, scope='mmmcl', locations=[location])


# engine
RUNNERS = _child('RUNNERS', 'mmmcl.engine')
RUNNER_CONSTRUCTORS = _child('RUNNER_CONSTRUCTORS', 'mmmcl.engine')
LOOPS = _child('LOOPS', 'mmmcl.engine')
HOOKS = _child('HOOKS', 'mmmcl.engine')
LOG_PROCESSORS = _child('LOG_PROCESSORS', 'mmmcl.engine')
OPTIMIZERS = _child('OPTIMIZERS', 'mmmcl.engine')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS', 'mmmcl.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS',
                                    'mmmcl.engine')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS', 'mmmcl.engine')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS', 'mmmcl.engine')
# datasets
DATASETS = _child('DATASETS', 'mmmcl.datasets')
DATA_SAMPLERS = _child('DATA_SAMPLERS', 'mmmcl.datasets')
TRANSFORMS = _child('TRANSFORMS', 'mmmcl.datasets')
# models
MODELS = _child('MODELS', 'mmmcl.models')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS', 'mmmcl.models')
BATCH_AUGMENTS = _child('BATCH_AUGMENTS', 'mmmcl.models')
TASK_UTILS = _child('TASK_UTILS', 'mmmcl.models')
# evaluation
METRICS = _child('METRICS', 'mmmcl.evaluation')
EVALUATORS = _child('EVALUATORS', 'mmmcl.evaluation')
# visualization
VISUALIZERS = _child('VISUALIZERS', 'mmmcl.visualization')
VISBACKENDS = _child('VISBACKENDS', 'mmmcl.visualization')
