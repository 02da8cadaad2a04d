"""tools/dataset_converters: prepare_deeplesion.py and make_synthetic_deeplesion.py."""
import csv
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from a3d_det.datasets import DeepLesionDataset
from a3d_det.datasets.dl_info import DL_INFO_COLUMNS
from a3d_det.datasets.mask_rle import decode_mask
from tests.helpers.tools import load_tool, run_main


def _tool(name):
    return load_tool(f'dataset_converters/{name}.py')


@pytest.fixture
def tree(synthetic_tree, tmp_path):
    """A copy of the synthetic tree with one malformed row and one unreadable key slice."""
    root = str(tmp_path / 'DeepLesion')
    shutil.copytree(synthetic_tree[0], root)
    with open(osp.join(root, 'DL_info.csv'), newline='') as f:
        rows = list(csv.DictReader(f))
    bad = dict(rows[0], Bounding_boxes='1, 2, 3')
    rows.insert(1, bad)
    broken = rows[-1]['File_name']
    with open(osp.join(root, 'DL_info.csv'), 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=DL_INFO_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    png = osp.join(root, 'Images_png', broken[:12], broken[13:])
    with open(png, 'wb') as f:
        f.write(b'broken')
    return root, broken


def test_prepare_lists_unreadable_neighbour_slices(tree, capsys):
    root, _ = tree
    with open(osp.join(root, 'DL_info.csv'), newline='') as f:
        name = next(csv.DictReader(f))['File_name']   # PPPPPP_SS_RR_NNN.png
    series, number = name[:12], name[13:]
    key = f'{series}/{number}'
    neighbour = osp.join(root, 'Images_png', series, f'{int(number[:-4]) + 1:03d}.png')
    with open(neighbour, 'r+b') as f:
        f.truncate(50)
    prep = _tool('prepare_deeplesion')
    assert prep.main(['--data-root', root]) == 0
    out, err = capsys.readouterr()
    assert f'unreadable slice: {neighbour}: cannot decode' in err
    assert f'needed by 1 sample(s): {key})' in err
    assert '2 unreadable slices needed by the samples' in out   # + the broken key
    listed = open(osp.join(root, 'annotations', prep.UNREADABLE_NAME)).read()
    assert neighbour in listed and key in listed
    with open(neighbour, 'wb') as f:   # repaired: the list goes
        f.write(open(osp.join(root, 'Images_png', key), 'rb').read())
    assert prep.main(['--data-root', root, '--no-slice-check']) == 0
    assert 'slices not checked' in capsys.readouterr().out
    assert prep.main(['--data-root', root]) == 0
    assert '1 unreadable slices needed' in capsys.readouterr().out


def test_prepare_writes_splits_with_masks_and_reports(tree, capsys):
    root, broken = tree
    prep = _tool('prepare_deeplesion')
    assert prep.main(['--data-root', root, '--workers', '2']) == 0
    out, err = capsys.readouterr()
    assert 'DL_info.csv, line 3' in err and 'Bounding_boxes' in err  # bad row reported
    assert broken[13:] in err and 'unreadable' in err
    assert '1 bad rows skipped, 1 unreadable images skipped' in out
    assert 'GrabCut' in out and 'summary' in out
    total = 0
    for split in ('train', 'val', 'test'):
        path = osp.join(root, 'annotations', f'deeplesion_{split}.json')
        with open(path) as f:
            data = json.load(f)
        assert data['metainfo']['mask_format'] == 'coco_rle'
        for entry in data['data_list']:
            assert len(entry['gt_masks']) == len(entry['gt_bboxes'])
            assert entry['file_name'].replace('/', '_') != broken
        ds = DeepLesionDataset(data_root=root, ann_file=path, split=split,
                               pipeline=[dict(type='LoadMultiSliceFromFile'),
                                         dict(type='LoadLesionAnnotations')])
        total += len(ds)
        if len(ds):
            res = ds[0]
            box = res['gt_bboxes'][0]
            ys, xs = np.nonzero(res['gt_masks'][0])
            assert len(xs) and xs.min() >= box[0] - 0.5 and xs.max() <= box[2] + 0.5
    assert total > 0


def test_prepare_resumes_from_cache(tree, capsys, monkeypatch):
    root, _ = tree
    prep = _tool('prepare_deeplesion')
    assert prep.main(['--data-root', root]) == 0
    cache = osp.join(root, 'annotations', prep.CACHE_NAME)
    with open(cache) as f:
        lines = f.read().splitlines()
    # interrupted run: last two results lost, the last line cut in half
    with open(cache, 'w') as f:
        f.write('\n'.join(lines[:-2]) + '\n' + lines[-2][:20])
    calls = []
    real = prep.grabcut_image_masks

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prep, 'grabcut_image_masks', counting)
    capsys.readouterr()
    assert prep.main(['--data-root', root]) == 0
    out, _ = capsys.readouterr()
    assert 'resuming' in out and len(calls) == 2
    with open(cache) as f:
        assert len([json.loads(line) for line in f]) == len(lines)  # no cut line left
    with open(osp.join(root, 'annotations', 'deeplesion_train.json')) as f:
        entry = json.load(f)['data_list'][0]
    mask = decode_mask(entry['gt_masks'][0], tuple(entry['ori_shape']))
    assert mask.any()


@pytest.mark.parametrize('argv, message', [
    (['--data-root', '{tmp}/missing'], 'annotation file not found'),
    (['--data-root', '{root}', '--workers', '0'], '--workers'),
])
def test_prepare_user_errors(tree, tmp_path, capsys, argv, message):
    root, _ = tree
    prep = _tool('prepare_deeplesion')
    argv = [a.format(tmp=tmp_path, root=root) for a in argv]
    assert run_main(prep, argv) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err and len(err.strip().splitlines()) == 1


def test_prepare_not_a_dl_info(tmp_path, capsys):
    os.makedirs(tmp_path / 'Images_png')
    (tmp_path / 'DL_info.csv').write_text('a,b\n1,2\n')
    assert run_main(_tool('prepare_deeplesion'), ['--data-root', str(tmp_path)]) == 2
    assert 'missing columns' in capsys.readouterr().err


def test_make_synthetic_cli(tmp_path, capsys):
    tool = _tool('make_synthetic_deeplesion')
    out_dir = str(tmp_path / 'syn')
    assert tool.main(['--out-dir', out_dir, '--num-series', '2', '--size', '48']) == 0
    assert 'key images' in capsys.readouterr().out
    assert osp.isfile(osp.join(out_dir, 'DL_info.csv'))
    assert run_main(tool, ['--out-dir', out_dir, '--num-series', '2', '--size', '48']) == 2
    err = capsys.readouterr().err
    assert 'already exists' in err and len(err.strip().splitlines()) == 1
    assert tool.main(['--out-dir', out_dir, '--num-series', '2', '--size', '48',
                      '--overwrite']) == 0
    assert run_main(tool, ['--out-dir', str(tmp_path / 'x'), '--size', '4']) == 2
