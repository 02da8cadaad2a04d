"""Prepare DeepLesion annotation files with GrabCut weak masks, one per split.

    python tools/dataset_converters/prepare_deeplesion.py --data-root data/DeepLesion --workers 2

Reads ``DL_info.csv`` and ``Images_png/``; writes
``annotations/deeplesion_{train,val,test}.json`` (mmengine's
``metainfo`` + ``data_list`` format, masks as COCO RLE) that
``DeepLesionDataset(ann_file=...)`` reads. Malformed rows and unreadable key
slices are reported and skipped. Then every slice file that the samples read
(the key slice and the neighbours of 3- and 7-slice loading, 2 mm and native)
is decoded once; the unreadable ones are listed on stderr and in
``annotations/unreadable_slices.txt`` with the samples that need them
(training skips such samples, evaluation stops on them). Per-image results go to a cache
(``annotations/.prepare_cache.jsonl``) as they come, so an interrupted run
resumes where it stopped.
"""
import argparse
import json
import multiprocessing
import os
import os.path as osp
import sys
import time
from functools import partial

from mmengine.utils import ProgressBar

from a3d_det.datasets.deeplesion_dataset import records_to_images
from a3d_det.datasets.dl_info import SPLITS, DLInfoError, iter_dl_info
from a3d_det.datasets.grabcut import GrabCutStats, grabcut_image_masks
from a3d_det.datasets.slice_check import unreadable_slices
from a3d_det.utils.cli import run_cli
from a3d_det.utils.errors import UserInputError

CACHE_NAME = '.prepare_cache.jsonl'
UNREADABLE_NAME = 'unreadable_slices.txt'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-root', default='data/DeepLesion',
                   help='folder with DL_info.csv and Images_png/ (default data/DeepLesion)')
    p.add_argument('--ann-file', default='DL_info.csv', help='CSV, relative to --data-root')
    p.add_argument('--out-dir', default=None, help='default: DATA_ROOT/annotations')
    p.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    p.add_argument('--window', type=float, nargs=2, default=(-1024.0, 2050.0),
                   metavar=('LO', 'HI'), help='HU window GrabCut sees (default -1024 2050)')
    p.add_argument('--grabcut', choices=('corrected', 'published'), default='corrected',
                   help='mask method: corrected (default) or published (the published '
                        'masks, uint8 wrap-around bug included; docs/reproduction.md)')
    p.add_argument('--no-resume', action='store_true', help='ignore an existing cache')
    p.add_argument('--no-slice-check', action='store_true',
                   help='do not decode the neighbour slices the samples read')
    return p.parse_args(argv)


def _fingerprint(csv_path: str, window, grabcut: str = 'corrected') -> dict:
    st = os.stat(csv_path)
    return dict(csv=osp.abspath(csv_path), size=st.st_size, mtime=int(st.st_mtime),
                window=[float(w) for w in window], grabcut=grabcut)


def load_cache(path: str, fingerprint: dict) -> dict:
    """Results already in the cache (by file name), if it was made for the same input."""
    done = {}
    if not osp.isfile(path):
        return done
    with open(path) as f:
        lines = f.read().splitlines()
    if not lines or json.loads(lines[0]).get('fingerprint') != fingerprint:
        print(f'{path}: made for another input, starting over', file=sys.stderr)
        return {}
    for line in lines[1:]:
        try:
            res = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by an interruption: redo from there
        done[res['file_name']] = res
    return done


def check_slices(image_dir: str, images: list, out_dir: str, workers: int) -> int:
    """Report the unreadable slices the samples need; return how many."""
    pool = multiprocessing.Pool(workers) if workers > 1 else None
    try:
        imap = partial(pool.imap, chunksize=16) if pool else map
        bad = unreadable_slices(image_dir, images, imap=imap)
    finally:
        if pool:
            pool.terminate()
    path = osp.join(out_dir, UNREADABLE_NAME)
    if not bad:
        if osp.exists(path):
            os.remove(path)
        return 0
    with open(path, 'w') as f:
        for reason, users in bad.values():
            line = f'{reason} (needed by {len(users)} sample(s): {", ".join(sorted(users))})'
            print(f'unreadable slice: {line}', file=sys.stderr)
            f.write(line + '\n')
    print(f'{len(bad)} unreadable slice(s) listed in {path}', file=sys.stderr)
    return len(bad)


def main(argv=None) -> int:
    args = parse_args(argv)
    csv_path = osp.join(args.data_root, args.ann_file)
    image_dir = osp.join(args.data_root, 'Images_png')
    out_dir = args.out_dir or osp.join(args.data_root, 'annotations')
    for path, what in ((csv_path, 'annotation file'), (image_dir, 'image folder')):
        if not osp.exists(path):
            raise UserInputError(f'{what} not found: {path}')
    if args.workers < 1:
        raise UserInputError('--workers must be >= 1')
    start = time.perf_counter()
    records, bad_rows = [], []
    try:
        for _, rec, msg in iter_dl_info(csv_path, strict=False):
            if rec is None:
                bad_rows.append(msg)
            else:
                records.append(rec)
    except (DLInfoError, UnicodeDecodeError) as e:
        raise UserInputError(str(e)) from None
    for msg in bad_rows:
        print(f'skipped bad row: {msg}', file=sys.stderr)
    images = records_to_images(records)

    os.makedirs(out_dir, exist_ok=True)
    cache_path = osp.join(out_dir, CACHE_NAME)
    fingerprint = _fingerprint(csv_path, args.window, args.grabcut)
    done = {} if args.no_resume else load_cache(cache_path, fingerprint)
    todo = [im for im in images if im['file_name'] not in done]
    if done:
        print(f'resuming: {len(images) - len(todo)} of {len(images)} images already done')
    # Rewrite the cache with the valid results first: a line cut by an
    # interruption must not glue itself to the next result.
    with open(cache_path + '.tmp', 'w') as cache:
        cache.write(json.dumps(dict(fingerprint=fingerprint)) + '\n')
        for res in done.values():
            cache.write(json.dumps(res) + '\n')
    os.replace(cache_path + '.tmp', cache_path)
    with open(cache_path, 'a') as cache:
        if todo:
            work = partial(grabcut_image_masks, image_dir, window=args.window,
                           method=args.grabcut)
            bar = ProgressBar(len(todo))
            pool = multiprocessing.Pool(args.workers) if args.workers > 1 else None
            results = pool.imap_unordered(work, todo, chunksize=4) if pool else map(work, todo)
            try:
                for res in results:
                    done[res['file_name']] = res
                    cache.write(json.dumps(res) + '\n')
                    cache.flush()
                    bar.update()
            finally:
                if pool:
                    pool.terminate()
            sys.stdout.write('\n')

    stats, unreadable = GrabCutStats(), []
    per_split = {name: [] for name in SPLITS}
    split_name = {v: k for k, v in SPLITS.items()}
    for im in images:
        res = done[im['file_name']]
        if res['error']:
            unreadable.append(res['error'])
            continue
        stats.merge(GrabCutStats.from_dict(res['stats']))
        entry = dict(im, gt_masks=res['gt_masks'], ori_shape=res['ori_shape'])
        per_split[split_name[im['split']]].append(entry)
    for msg in unreadable:
        print(f'skipped unreadable image: {msg}', file=sys.stderr)
    n_bad_slices = None if args.no_slice_check else check_slices(
        image_dir, images, out_dir, args.workers)
    written = []
    for name, data_list in per_split.items():
        path = osp.join(out_dir, f'deeplesion_{name}.json')
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(dict(metainfo=dict(classes=['lesion'], split=name,
                                         source=osp.abspath(csv_path),
                                         mask_format='coco_rle', window=list(args.window),
                                         grabcut=args.grabcut),
                           data_list=data_list), f)
        os.replace(tmp, path)
        written.append(f'{path} ({len(data_list)} images)')
    n_noisy = sum(bool(r['noisy']) for r in records)
    print(f'summary: {len(records)} lesion rows ({n_noisy} Possibly_noisy) on '
          f'{len(images)} key images, {len(bad_rows)} bad rows skipped, '
          f'{len(unreadable)} unreadable images skipped, '
          + ('slices not checked' if n_bad_slices is None else
             f'{n_bad_slices} unreadable slices needed by the samples')
          + f'; {stats}; '
          f'{time.perf_counter() - start:.1f} s')
    for line in written:
        print(f'wrote {line}')
    return 0


if __name__ == '__main__':
    run_cli(main)
