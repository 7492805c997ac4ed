from mmengine.config import Config

from mmmcl.utils import apply_pretrained

CONFIG = '''
pretrained = None
model = dict(backbone=dict(
    type='ResNet',
    init_cfg=dict(type='Pretrained', checkpoint=pretrained)
    if pretrained else None))
'''


def test_command_line_pretrained_reaches_the_backbone(tmp_path):
    path = tmp_path / 'transfer.py'
    path.write_text(CONFIG)
    cfg = Config.fromfile(path)
    assert apply_pretrained(cfg) is None  # None: random init stays
    assert cfg.model.backbone.init_cfg is None

    cfg.merge_from_dict({'pretrained': 'member0.pth'})
    assert cfg.model.backbone.init_cfg is None  # what mmengine alone does
    assert apply_pretrained(cfg) == 'member0.pth'
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint='member0.pth')
    assert apply_pretrained(cfg) is None  # already loads it


def test_edited_variable_is_left_as_is(tmp_path):
    path = tmp_path / 'transfer.py'
    path.write_text(CONFIG.replace('pretrained = None',
                                   "pretrained = 'a.pth'"))
    cfg = Config.fromfile(path)
    assert apply_pretrained(cfg) is None
    assert cfg.model.backbone.init_cfg.checkpoint == 'a.pth'
    assert apply_pretrained(Config(dict(pretrained='a.pth'))) is None
