"""tvrlib.experiment.Bench.budget / .validation: the notebooks' quick budget on a light profile, one place."""

from __future__ import annotations

import pytest

from tvrlib.experiment import QUICK_BUDGETS, QUICK_VAL_VIDEOS, Bench, Protocol

P = Protocol(max_epochs=30, patience=5, seeds=(0, 1, 2), batch_size=128, lr=1e-4, logit_scale=100.0)


class Val:
    """A stand-in validation source: 400 videos; subset(n) says what it was asked for."""

    videos = list(range(400))

    def subset(self, n):
        return ("first", n)


def bench(light: bool) -> Bench:
    return Bench(session=None, settings={"light": light}, protocol=P, train=None, val=Val(), test=None)


def test_a_light_profile_gets_the_named_quick_budget_with_its_reason():
    q = bench(True).budget("token", reason="notebook 07's quick budget")
    t = QUICK_BUDGETS["token"]
    assert (q.batch_size, q.max_steps_per_epoch, q.max_epochs, q.patience) == (
        t["batch_size"], t["steps"], t["epochs"], t["patience"]
    )  # fmt: skip
    assert "notebook 07's quick budget" in q.describe()
    assert P.max_epochs == 30  # the shared protocol is not changed in place


def test_a_parameter_that_is_set_wins_over_the_quick_budget():
    q = bench(True).budget("sentence", reason="r", batch_size=16, steps_per_epoch=0, max_epochs=3, patience=1)
    assert (q.batch_size, q.max_steps_per_epoch, q.max_epochs, q.patience) == (16, 0, 3, 1)


def test_elsewhere_the_profile_protocol_stands_unless_steps_per_epoch_is_set():
    b = bench(False)
    assert b.budget("token", reason="r") is P
    assert b.budget("token", reason="r", steps_per_epoch=0) is P  # 0: a full pass, as the profile's
    assert b.budget("token", reason="r", steps_per_epoch=50).max_steps_per_epoch == 50
    with pytest.raises(ValueError, match="unknown budget"):
        b.budget("tokens", reason="r")


def test_validation_uses_the_quick_subset_only_on_a_light_profile():
    assert bench(True).validation() == ("first", QUICK_VAL_VIDEOS)
    assert bench(True).validation(50) == ("first", 50)
    assert isinstance(bench(False).validation(), Val)
    assert isinstance(bench(True).validation(1000), Val)  # more than there are: all of them
