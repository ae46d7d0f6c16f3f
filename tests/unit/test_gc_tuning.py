"""A serving process tunes the cyclic garbage collector (collab.app.tune_gc)."""

from __future__ import annotations

import gc

from collab.app import GC_THRESHOLDS, tune_gc


def test_the_server_freezes_what_startup_made_and_collects_young_objects_less_often():
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # startup's objects are out of the collector's walk
        assert GC_THRESHOLDS[0] > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
