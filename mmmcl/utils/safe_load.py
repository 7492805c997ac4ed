"""Load checkpoints with ``torch.load(weights_only=True)`` and an allow-list.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6
then defaults to ``weights_only=True`` and refuses every checkpoint a
:class:`mmengine.runner.Runner` writes, because the message hub holds
:class:`mmengine.logging.HistoryBuffer` objects with numpy arrays. Instead of
switching ``weights_only`` off, :func:`register_safe_globals` allow-lists the
few types those checkpoints really hold (found by saving checkpoints through a
Runner and listing them with
``torch.serialization.get_unsafe_globals_in_checkpoint``) and replaces
mmengine's local-file loader by one that passes ``weights_only=True``
explicitly and explains a refusal. Anything else in a file (a foreign class, a
function, ``os.system``) is still refused before it runs.
"""
import errno
import os.path as osp
import pickle
import re
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

__all__ = [
    'SAFE_GLOBALS', 'UnsafeCheckpointError', 'register_safe_globals',
    'load_from_local'
]

# The statistics methods HistoryBuffer pickles along with its state (its
# ``__getstate__`` adds ``statistics_methods``). Protocol 2, torch.save's
# default, writes a method defined in a class as ``getattr(HistoryBuffer,
# 'mean')``, so the pickle holds ``builtins.getattr``.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(owner: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling.

    Only looks up HistoryBuffer's own statistics methods; the real
    ``getattr`` would hand a pickle any attribute of any loaded object.
    """
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Refused global: GLOBAL builtins.getattr({owner!r}, {name!r}): '
        'getattr is only allowed for HistoryBuffer.'
        f'{{{",".join(_HISTORY_BUFFER_METHODS)}}}')


# numpy dtypes of the arrays and scalars found in checkpoints: HistoryBuffer
# histories (float64), metric values kept in the message hub (e.g. mmseg's
# mIoU is a numpy float64, counts are int64), numpy's legacy RNG state
# (uint32). Unpickling a dtype builds an instance of its ``numpy.dtypes``
# class, so each class must be allowed. Object, string, void and datetime
# dtypes are left out: no checkpoint of ours holds them.
_NUMPY_DTYPES = (
    np.dtypes.BoolDType, np.dtypes.Int8DType, np.dtypes.Int16DType,
    np.dtypes.Int32DType, np.dtypes.Int64DType, np.dtypes.UInt8DType,
    np.dtypes.UInt16DType, np.dtypes.UInt32DType, np.dtypes.UInt64DType,
    np.dtypes.Float16DType, np.dtypes.Float32DType, np.dtypes.Float64DType)

_reconstruct = np._core.multiarray._reconstruct
_scalar = np._core.multiarray.scalar

#: Everything allowed on top of torch's own defaults, as
#: ``(object, 'name in the pickle')``.
SAFE_GLOBALS: List[Tuple[Any, str]] = [
    # mmengine's message hub: log scalars are HistoryBuffers.
    (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
    (_history_buffer_getattr, 'builtins.getattr'),
    # numpy arrays (numpy 2 module path, and numpy 1's for older files).
    (_reconstruct, 'numpy._core.multiarray._reconstruct'),
    (_reconstruct, 'numpy.core.multiarray._reconstruct'),
    (np.ndarray, 'numpy.ndarray'),
    (np.dtype, 'numpy.dtype'),
    # numpy scalars (np.float64(0.5) is pickled as ``scalar(dtype, bytes)``).
    (_scalar, 'numpy._core.multiarray.scalar'),
    (_scalar, 'numpy.core.multiarray.scalar'),
] + [(t, f'numpy.dtypes.{t.__name__}') for t in _NUMPY_DTYPES]

_registered = False


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a global that is not on mmmcl's allow-list."""


def register_safe_globals() -> None:
    """Allow-list :data:`SAFE_GLOBALS` and install :func:`load_from_local`.

    Idempotent: the second and later calls do nothing.
    """
    global _registered
    if _registered:
        return
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    _registered = True


_REFUSAL_PATTERNS = (
    r'GLOBAL (\S+) was not an allowed global',
    r'unsupported GLOBAL (\S+) whose module',
    r'Refused global: GLOBAL (.+?): getattr',
    r'reduce for unrecognized function (.+?)(?: which belongs|$)',
    r'(?:create new object|build).*but got (.+?)$',
)


def _refused_global(message: str, filename: str) -> Optional[str]:
    """Name the global torch refused, from its message or the file."""
    for pattern in _REFUSAL_PATTERNS:
        match = re.search(pattern, message, flags=re.MULTILINE)
        if match:
            name = match.group(1).rstrip('.')
            return re.sub(r"^<class '(.+)'>$", r'\1', name)
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # not a zip checkpoint: nothing more to say
        found = []
    return ', '.join(sorted(found)) or None


def load_from_local(filename: str,
                    map_location: Optional[Union[str, Callable,
                                                 torch.device]] = None):
    """Load a local checkpoint with ``torch.load(weights_only=True)``.

    Registered for every path without a scheme (prefix ``''``) in place of
    mmengine's loader of the same name, so ``load_checkpoint``,
    ``load_from`` and ``resume`` all come through here.

    Args:
        filename (str): Path of the checkpoint; ``~`` is expanded.
        map_location (str | callable | torch.device, optional): Same as
            :func:`torch.load`. Defaults to None.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: ``filename`` is not a file.
        UnsafeCheckpointError: The file holds a global that is not on the
            allow-list (:data:`SAFE_GLOBALS` and torch's defaults).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(errno.ENOENT, 'Checkpoint file not found',
                                filename)
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        message = str(e)
        refused = _refused_global(message, filename)
        if refused is None:
            # torch wraps the reason in advice to switch the check off;
            # keep only the reason.
            reason = message.split('WeightsUnpickler error:')[-1]
            refused = reason.split('Check the documentation')[0].strip()
        raise UnsafeCheckpointError(
            f"Refused to load checkpoint '{filename}': it holds the global "
            f"'{refused}', which is not allow-listed. mmmcl loads "
            'checkpoints with torch.load(weights_only=True): only tensors, '
            'plain Python containers and the types in '
            'mmmcl.utils.safe_load.SAFE_GLOBALS (mmengine message hub, '
            'numpy arrays and scalars) are loaded. If you trust this file, '
            'inspect it with '
            'torch.serialization.get_unsafe_globals_in_checkpoint() and '
            'convert it into a checkpoint of tensors (e.g. a plain '
            'state_dict) before loading it.') from None
