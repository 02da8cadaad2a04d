"""Config preparation of tools/train.py and tools/test.py."""
import pytest
import torch
from mmengine.config import Config

from a3d_det.utils.errors import UserInputError
from a3d_det.utils.runner_config import (add_visualization_hook, enable_amp, load_config,
                                         set_froc_dump_file, set_load_from, set_resume,
                                         set_work_dir)


def test_load_config_missing_and_wrong_suffix(tmp_path):
    with pytest.raises(UserInputError, match='config file not found'):
        load_config(str(tmp_path / 'nope.py'))
    other = tmp_path / 'cfg.yaml'
    other.write_text('a: 1\n')
    with pytest.raises(UserInputError, match='.py'):
        load_config(str(other))


def test_load_config_unreadable_is_a_user_error(tmp_path):
    path = tmp_path / 'broken.py'
    path.write_text('model = dict(type=\n')
    with pytest.raises(UserInputError, match='cannot read config .*broken.py') as err:
        load_config(str(path))
    assert '\n' not in str(err.value)


def test_load_config_merges_options(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text("train_cfg = dict(max_iters=100, val_interval=10)\n")
    cfg = load_config(str(path), {'train_cfg.max_iters': 3})
    assert cfg.train_cfg.max_iters == 3 and cfg.train_cfg.val_interval == 10


def test_work_dir_precedence():
    cfg = Config(dict())
    set_work_dir(cfg, None, 'configs/a3d/a3d_x.py')
    assert cfg.work_dir == './work_dirs/a3d_x'
    cfg = Config(dict(work_dir='w'))
    set_work_dir(cfg, None, 'configs/a3d/a3d_x.py')
    assert cfg.work_dir == 'w'
    set_work_dir(cfg, 'cli', 'configs/a3d/a3d_x.py')
    assert cfg.work_dir == 'cli'


def test_resume_modes(tmp_path, capsys):
    cfg = Config(dict(work_dir=str(tmp_path), load_from='pretrained.pth'))
    set_resume(cfg, None)
    assert cfg.get('resume') is None and cfg.load_from == 'pretrained.pth'
    set_resume(cfg, 'auto')
    assert cfg.resume is True and cfg.load_from is None
    assert 'training from scratch' in capsys.readouterr().err
    with pytest.raises(UserInputError, match='resume from not found'):
        set_resume(cfg, str(tmp_path / 'missing.pth'))
    ckpt = tmp_path / 'iter_4.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(UserInputError, match='cannot read checkpoint to resume from: .*empty file'):
        set_resume(cfg, str(ckpt))
    torch.save(dict(meta={}, state_dict={}), ckpt)
    set_resume(cfg, str(ckpt))
    assert cfg.resume is True and cfg.load_from == str(ckpt)
    cfg.load_from = None
    set_resume(cfg, 'auto')  # finds it
    assert cfg.load_from == str(ckpt)
    assert f'resuming from {ckpt}' in capsys.readouterr().err


def test_set_load_from(tmp_path):
    cfg = Config(dict(resume=True))
    with pytest.raises(UserInputError, match='checkpoint not found'):
        set_load_from(cfg, str(tmp_path / 'x.pth'))
    (tmp_path / 'x.pth').write_bytes(b'')
    set_load_from(cfg, str(tmp_path / 'x.pth'))
    assert cfg.resume is False and cfg.load_from.endswith('x.pth')


def test_enable_amp():
    cfg = Config(dict(optim_wrapper=dict(
        optimizer=dict(type='SGD', lr=0.02), clip_grad=dict(max_norm=35))))
    enable_amp(cfg)
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() \
        else 'CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.type == expected
    assert cfg.optim_wrapper.clip_grad.max_norm == 35
    with pytest.raises(UserInputError, match='optim_wrapper'):
        enable_amp(Config(dict()))


def test_froc_dump_file_sets_every_froc_metric(tmp_path):
    cfg = Config(dict(test_evaluator=[dict(type='DeepLesionFROCMetric'),
                                      dict(type='Other')]))
    dump = tmp_path / 'sub' / 'pred.json'
    set_froc_dump_file(cfg, str(dump))
    assert cfg.test_evaluator[0].dump_file == str(dump)
    assert 'dump_file' not in cfg.test_evaluator[1]
    assert dump.parent.is_dir()
    with pytest.raises(UserInputError, match='DeepLesionFROCMetric'):
        set_froc_dump_file(Config(dict(test_evaluator=dict(type='Other'))),
                           str(dump))


def test_visualization_hook_added_once(tmp_path):
    cfg = Config(dict(custom_hooks=[dict(type='SomeHook')]))
    add_visualization_hook(cfg, str(tmp_path))
    add_visualization_hook(cfg, str(tmp_path / 'b'))
    types = [h['type'] for h in cfg.custom_hooks]
    assert types == ['SomeHook', 'LesionVisualizationHook']
    assert cfg.custom_hooks[-1]['show_dir'] == str(tmp_path / 'b')


def test_set_load_from_leaves_the_model_config_alone(tmp_path):
    """Evaluation needs no ImageNet file because building reads none, not
    because the config is rewritten."""
    ckpt = tmp_path / 'detector.pth'
    ckpt.write_bytes(b'x')
    cfg = Config(dict(work_dir=str(tmp_path), model=dict(
        type='LesionMaskRCNN',
        backbone=dict(type='DenseNet3D', pretrained='checkpoints/densenet121.pth'))))
    set_load_from(cfg, str(ckpt))
    assert cfg.load_from == str(ckpt)
    assert cfg.model.backbone.pretrained == 'checkpoints/densenet121.pth'
