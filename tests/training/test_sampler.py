from __future__ import annotations

import pytest

from forethought.training.sampler import ResumableBatchSampler


def test_each_epoch_visits_each_window_at_most_once_and_epochs_differ() -> None:
    s = ResumableBatchSampler(100, 8, seed=0, end_step=24)  # 12 batches per epoch, 4 windows dropped
    batches = list(s)
    epoch0 = [i for b in batches[:12] for i in b]
    epoch1 = [i for b in batches[12:] for i in b]
    assert len(set(epoch0)) == 96 and len(set(epoch1)) == 96
    assert epoch0 != epoch1


def test_order_is_a_function_of_seed_and_step_only() -> None:
    full = list(ResumableBatchSampler(50, 5, seed=3, end_step=30))
    tail = list(ResumableBatchSampler(50, 5, seed=3, start_step=17, end_step=30))
    assert tail == full[17:]
    assert list(ResumableBatchSampler(50, 5, seed=4, end_step=30)) != full


def test_ranks_partition_the_global_batch() -> None:
    single = ResumableBatchSampler(64, 8, seed=1, end_step=20)
    ranks = [ResumableBatchSampler(64, 8, seed=1, end_step=20, rank=r, world_size=2) for r in range(2)]
    for step, (a, b) in enumerate(zip(*ranks)):
        assert len(a) == len(b) == 4
        assert a + b == single.indices(step)


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="multiple of the world size"):
        ResumableBatchSampler(64, 7, seed=0, rank=0, world_size=2)
    with pytest.raises(ValueError, match="fewer than one batch"):
        ResumableBatchSampler(3, 8, seed=0)
