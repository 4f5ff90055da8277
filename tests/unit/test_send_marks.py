"""Marking requests started: a batch's rate-limit slots are grouped so each group costs one UPDATE,
yet no request starts more than a group's span after its row was marked."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenant_worker.services.sending import MARK_SPAN_SECONDS, slot_groups


@pytest.mark.parametrize(
    ("waits", "span", "groups"),
    [
        pytest.param([], 0.5, [], id="no-slots"),
        pytest.param([0.0], 0.5, [[0]], id="one-slot"),
        pytest.param([0.0] * 4, 0.5, [[0, 1, 2, 3]], id="a-batch-sent-at-once-is-one-mark"),
        pytest.param([0.0, 0.4, 0.5, 0.9, 1.0], 0.5, [[0, 1], [2, 3], [4]], id="a-group-spans-less-than-span"),
        pytest.param([0.0, 1.0, 2.0], 0.5, [[0], [1], [2]], id="slots-further-apart-than-span"),
        pytest.param([3.0, 3.1, 3.6], 0.5, [[0, 1], [2]], id="waits-need-not-start-at-zero"),
        pytest.param([0.0, 0.0], 0.0, [[0], [1]], id="zero-span-marks-each-request"),
    ],
)
def test_slot_groups_split_ascending_slots_into_spans(waits: list[float], span: float, groups: list[list[int]]) -> None:
    assert slot_groups(waits, span) == groups


def test_a_batch_spread_over_five_seconds_of_slots_costs_at_most_ten_marks() -> None:
    waits = [i * 5.0 / 49 for i in range(50)]
    assert len(slot_groups(waits, MARK_SPAN_SECONDS)) <= 10


ascending_waits = st.lists(st.floats(min_value=0, max_value=60, allow_nan=False), max_size=80).map(sorted)
spans = st.floats(min_value=0.001, max_value=10, allow_nan=False)


@given(ascending_waits, spans)
def test_groups_partition_the_indexes_in_order_and_each_spans_less_than_span(waits: list[float], span: float) -> None:
    groups = slot_groups(waits, span)
    assert [index for group in groups for index in group] == list(range(len(waits)))
    assert all(group for group in groups)
    for group in groups:
        assert waits[group[-1]] - waits[group[0]] < span
    # Greedy: a new group starts only when the slot is a whole span after the group before began,
    # so a batch never costs more marks than its slots' spread allows.
    for before, after in itertools.pairwise(groups):
        assert waits[after[0]] - waits[before[0]] >= span
    if waits:
        assert len(groups) <= math.floor((waits[-1] - waits[0]) / span) + 1
