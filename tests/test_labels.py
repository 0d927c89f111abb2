"""domain.labels: names shown together in a narrow panel keep what tells them apart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.labels import distinct_labels, first_that_fits, shared_prefix

NAME = st.text(alphabet="ab-_.7", min_size=1, max_size=30)


def test_a_fleet_of_one_process_shows_its_worker_numbers():
    names = [f"sim-vm-25294-{n}" for n in range(24)]
    labels = distinct_labels(names, 6)
    assert labels["sim-vm-25294-0"] == "…-0" and labels["sim-vm-25294-17"] == "…-17"
    assert len(set(labels.values())) == 24
    long = [f"worker-{'a' * 12}-{'b' * 12}-{n}" for n in (1, 2, 3)]
    assert sorted(distinct_labels(long, 6).values()) == ["…-1", "…-2", "…-3"]
    assert distinct_labels(["seed-w8", "sim-vm-1-0"], 20) == {"seed-w8": "seed-w8", "sim-vm-1-0": "sim-vm-1-0"}


def test_shared_prefix_stops_at_a_separator():
    assert shared_prefix(["sim-vm-25294-1", "sim-vm-25294-17"]) == "sim-vm-25294"
    assert shared_prefix(["abc1", "abc2"]) == ""  # no separator: nothing to drop
    assert shared_prefix(["same", "same"]) == ""  # one name


def test_a_heading_says_the_longest_wording_that_fits():
    assert first_that_fits(13, "last report 12s ago", "last 12s ago", "12s ago") == "last 12s ago"
    assert first_that_fits(40, "last report 12s ago", "12s ago") == "last report 12s ago"
    assert first_that_fits(4, "last report 12s ago", "12s ago") == "12…o"


@given(st.lists(NAME, min_size=1, max_size=12), st.integers(1, 40))
def test_labels_fit_and_only_cut_when_needed(names, width):
    labels = distinct_labels(names, width)
    assert set(labels) == set(names)
    assert all(len(label) <= width for label in labels.values())
    if all(len(n) <= width for n in names):
        assert all(labels[n] == n for n in names)
    for name, label in labels.items():
        if label != name:  # cut: it says so, and its end is the name's end
            assert "…" in label
            assert name.endswith(label.rpartition("…")[2])


@given(st.lists(NAME, min_size=2, max_size=12, unique=True), st.integers(1, 40))
def test_names_that_differ_within_what_the_width_keeps_stay_distinct(names, width):
    rest = [n[len(shared_prefix(names)) :] for n in names]
    if all(len(r) <= (width - 1) // 2 for r in rest):
        assert len(set(distinct_labels(names, width).values())) == len(names)


def test_two_processes_keep_their_pids_tail_rather_than_a_double_cut():
    names = [f"sim-vm-25294-{n}" for n in range(3)] + [f"sim-vm-31877-{n}" for n in range(3)]
    labels = distinct_labels(names, 7)
    assert labels["sim-vm-25294-1"] == "…5294-1" and labels["sim-vm-31877-1"] == "…1877-1"
    assert distinct_labels(["sim-host-a-1234-worker-17"], 14) == {"sim-host-a-1234-worker-17": "sim-hos…ker-17"}
