"""Who a failed torchrun run blames: the rank that died, never the survivors that only lost it."""

import pytest

from vaestudy.pipelines import exact_split as X
from vaestudy.pipelines.distributed import DistributedRunError, _rank_error_lines, blame
from vaestudy.registry import exemplar

GLOO_CLOSED = ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer "
               "[127.0.0.1]:29500")


def test_a_survivor_that_lost_its_peer_is_not_blamed():
    """Rank 1 raised; rank 0's next exchange failed with gloo's "Connection closed by peer": only rank 1 is named."""
    log = ("[vaestudy rank 1] split failed:\nTraceback (most recent call last):\n  File x\n"
           "RuntimeError: injected failure on rank 1\n"
           f"[vaestudy rank 0] split failed:\nTraceback (most recent call last):\n  File y\n{GLOO_CLOSED}\n")
    errors = _rank_error_lines(log)
    assert errors == {1: "RuntimeError: injected failure on rank 1", 0: GLOO_CLOSED}
    assert blame(errors, 2, 3) == "rank 1"
    # the same with the survivor reporting first, and with a reset or broken pipe instead
    for lost in (GLOO_CLOSED, "RuntimeError: Connection reset by peer", "BrokenPipeError: [Errno 32] Broken pipe"):
        assert blame({0: lost, 1: "ValueError: boom"}, 2, 3) == "rank 1"
        assert blame({0: lost, 2: lost, 1: "ValueError: boom"}, 4, 3) == "rank 1"


def test_a_rank_that_died_without_a_word_is_named_by_its_silence():
    """Rank 1 was killed (no traceback): rank 0 lost it, so rank 1 is named as the one that died, rank 0 as a witness."""
    who = blame({0: GLOO_CLOSED}, 2, 3)
    assert who.startswith("rank 1 (died") and "rank 0 lost its connection" in who
    # a timeout and a lost connection together still point at the silent rank
    mixed = blame({0: GLOO_CLOSED, 2: "RuntimeError: Timed out waiting 3000ms for recv (timed out)"}, 3, 3)
    assert mixed.startswith("rank 1 (died") and "rank 2 timed out waiting" in mixed
    # only lost connections and no silent rank: every rank reported losing another, name them all
    assert blame({0: GLOO_CLOSED, 1: GLOO_CLOSED}, 2, 3) == "rank 0, 1"


@pytest.mark.slow  # starts ranks under torchrun
def test_torchrun_names_only_the_rank_that_died_mid_decode():
    """Rank 1 raises in the middle of an exact split decode; rank 0's next halo exchange reports gloo's "Connection
    closed by peer" (printed in the message too): the run is blamed on rank 1 alone."""
    with pytest.raises(DistributedRunError) as info:
        X.compare_split_methods((exemplar("exact stream").name,), 2, (1, 4, 4), timeout_s=60, launcher="torchrun", deadline_s=300,
                                fail_rank=1, fail_after=5)
    msg = str(info.value)
    assert "failed on rank 1 (" in msg and "injected failure on rank 1" in msg
