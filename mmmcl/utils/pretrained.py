from typing import Optional

from mmengine.config import Config


def apply_pretrained(cfg: Config) -> Optional[str]:
    """Make a config's top-level ``pretrained`` path reach its backbone.

    The transfer configs (``configs/transfer``) name the exported backbone
    in one variable, ``pretrained``, from which ``model.backbone.init_cfg``
    is computed when the file is read. A later ``--cfg-options
    pretrained=PATH`` (or a child config that only redefines it) would
    change the variable alone and load nothing, silently; this sets
    ``model.backbone.init_cfg = dict(type='Pretrained', checkpoint=PATH)``
    whenever ``pretrained`` is a path that the backbone's init_cfg does not
    already load.

    Returns:
        str | None: The path now in ``model.backbone.init_cfg``, or None if
        nothing was changed.
    """
    path = cfg.get('pretrained')
    backbone = (cfg.get('model') or {}).get('backbone')
    if not isinstance(path, str) or not path or backbone is None:
        return None
    init_cfg = backbone.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('checkpoint') == path:
        return None
    backbone['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    return path
