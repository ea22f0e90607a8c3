"""A batch sampler whose data order is a pure function of `(seed, step)`: exactly resumable, DDP-aware.

Step `s` reads global batch `s`: epoch `e = s // batches_per_epoch` shuffles all `N` windows with a
generator seeded by `(seed, e)`, global batch `j = s % batches_per_epoch` is slice
`[j * B, (j + 1) * B)` of that permutation (the tail that does not fill a batch is dropped), and
rank `r` of `W` takes the `r`-th contiguous `B / W` part of it. Resuming at step `s` therefore
needs nothing but `s` (the "data-sampler position" of a checkpoint), and the union over ranks of
one step's samples is the same global batch whatever the world size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

_SAMPLER_SALT = 0x5A3D1E  # keeps the data order independent of other RNG streams seeded with `seed`


class ResumableBatchSampler:
    """Yields lists of dataset indices (one per step) from `start_step` to `end_step` (exclusive)."""

    def __init__(self, num_samples: int, global_batch: int, *, seed: int, start_step: int = 0,
                 end_step: int | None = None, rank: int = 0, world_size: int = 1) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if global_batch < 1 or global_batch % world_size:
            raise ValueError(f"batch_size ({global_batch}) must be a positive multiple of the world size "
                             f"({world_size})")
        if num_samples < global_batch:
            raise ValueError(f"the dataset has {num_samples} training windows, fewer than one batch of {global_batch}; "
                             f"lower batch_size or collect more episodes")
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.local_batch = global_batch // world_size
        self.seed = seed
        self.start_step = start_step
        self.end_step = end_step
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = num_samples // global_batch
        self._perm_epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def permutation(self, epoch: int) -> torch.Tensor:
        """The shuffled order of all windows in `epoch`, `(N,)` int64; identical on every rank."""
        if epoch != self._perm_epoch:
            # A private generator: the data order never touches (or depends on) the global torch RNG.
            # (Not `hash()`: string hashing is salted per process, which would break resume.)
            entropy = np.random.SeedSequence([self.seed, epoch, _SAMPLER_SALT]).generate_state(1, np.uint64)[0]
            gen = torch.Generator().manual_seed(int(entropy) & (2**63 - 1))
            self._perm = torch.randperm(self.num_samples, generator=gen)
            self._perm_epoch = epoch
        return self._perm

    def indices(self, step: int) -> list[int]:
        """This rank's dataset indices for optimizer step `step` (0-based), `local_batch` of them."""
        epoch, j = divmod(step, self.batches_per_epoch)
        start = j * self.global_batch + self.rank * self.local_batch
        return self.permutation(epoch)[start:start + self.local_batch].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while self.end_step is None or step < self.end_step:
            yield self.indices(step)
            step += 1

    def __len__(self) -> int:
        if self.end_step is None:
            raise TypeError("an endless ResumableBatchSampler has no length; pass end_step")
        return max(0, self.end_step - self.start_step)
