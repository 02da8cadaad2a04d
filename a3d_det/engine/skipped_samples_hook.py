"""``SkippedSamplesHook``: counts the training samples skipped as unreadable."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mmengine.dist import all_gather_object
from mmengine.hooks import Hook

from a3d_det.datasets.skipped_samples import (DEFAULT_MAX_SKIPPED_FRACTION, SKIPPED_KEY,
                                              SkippedSamplesError, check_skipped,
                                              skipped_summary)
from a3d_det.registry import HOOKS

__all__ = ['SkippedSamplesHook']

#: The message hub key holding ``{file_name: reason}`` (kept by checkpoints,
#: so a resumed run goes on counting).
INFO_KEY = 'skipped_samples'


def _batch_skipped(data_batch: Any) -> dict[str, str]:
    """``{file_name: reason}`` carried by the data samples of a batch."""
    samples = data_batch.get('data_samples') if isinstance(data_batch, Mapping) else None
    found: dict[str, str] = {}
    for sample in samples or ():
        skipped = getattr(sample, 'metainfo', {}).get(SKIPPED_KEY)
        if skipped:
            found.update(skipped)
    return found


@HOOKS.register_module()
class SkippedSamplesHook(Hook):
    """Count the unreadable training samples over all loader workers and ranks.

    ``DeepLesionDataset`` skips a training sample whose slices cannot be read
    (warning with the file's name) and draws another; the skipped ones ride
    on the next data sample's metainfo to this hook, in the main process.
    It logs the count at the end of each epoch and before each validation,
    and stops training (:class:`SkippedSamplesError` listing the files) once
    more than the train dataset's ``max_skipped_fraction`` of its samples
    were skipped. A validation or test sample that carries skipped samples
    (a dataset not in test mode) is an error: evaluation never skips.

    Counts are by key image: a sample skipped again in a later epoch counts
    once. Registered by the runtime config's ``default_hooks``.
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self.skipped: dict[str, str] = {}
        self.num_samples = 0
        self.fraction = DEFAULT_MAX_SKIPPED_FRACTION
        self.training = False
        self._reported_at = -1

    def before_train(self, runner) -> None:
        dataset = runner.train_dataloader.dataset
        self.num_samples = len(dataset)
        self.fraction = float(getattr(dataset, 'max_skipped_fraction',
                                      DEFAULT_MAX_SKIPPED_FRACTION))
        self.skipped = dict(runner.message_hub.get_info(INFO_KEY) or {})
        self.training = True

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        new = {k: v for k, v in _batch_skipped(data_batch).items() if k not in self.skipped}
        if not new:
            return
        self.skipped.update(new)
        runner.message_hub.update_info(INFO_KEY, dict(self.skipped))
        # This rank's count; the ranks' union is checked at epoch/validation.
        check_skipped(self.skipped, self.num_samples, self.fraction)

    def _report(self, runner) -> None:
        if runner.iter == self._reported_at:  # epoch end, then validation
            return
        self._reported_at = runner.iter
        merged: dict[str, str] = {}
        for part in all_gather_object(self.skipped):
            merged.update(part)
        self.skipped = merged
        runner.message_hub.update_info(INFO_KEY, dict(merged))
        level = logging.WARNING if merged else logging.INFO
        names = ', '.join(sorted(merged)[:10]) + (' ...' if len(merged) > 10 else '')
        runner.logger.log(level, skipped_summary(merged, self.num_samples, self.fraction)
                          + (f': {names}' if merged else ''))
        check_skipped(merged, self.num_samples, self.fraction)

    def after_train_epoch(self, runner) -> None:
        self._report(runner)

    def before_val_epoch(self, runner) -> None:
        if self.training:
            self._report(runner)

    def after_train(self, runner) -> None:
        self.training = False

    def _no_skips(self, data_batch: Any, mode: str) -> None:
        skipped = _batch_skipped(data_batch)
        if skipped:
            lines = '\n'.join(f'  {k}: {v}' for k, v in sorted(skipped.items()))
            raise SkippedSamplesError(
                f'{mode} never skips images, but its dataset skipped (set test_mode=True):\n'
                + lines)

    def before_val_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        self._no_skips(data_batch, 'validation')

    def before_test_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        self._no_skips(data_batch, 'testing')
