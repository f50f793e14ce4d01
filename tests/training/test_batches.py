"""Training batches: every window once per pass, and extra passes when a data set is small."""

from __future__ import annotations

import random
from collections import Counter

from training.sequences import Window
from training.train import _batches


def test_min_steps_repeats_whole_shuffled_passes() -> None:
    windows = [Window(user=i, start=0, stop=1 + i % 5, loss_from=0) for i in range(10)]
    one = _batches(windows, 4, random.Random(0))
    assert len(one) == 3 and sorted(w.user for b in one for w in b) == list(range(10))
    many = _batches(windows, 4, random.Random(0), min_steps=7)
    assert len(many) == 9  # three passes of three batches
    assert set(Counter(w.user for b in many for w in b).values()) == {3}
