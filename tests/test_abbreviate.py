"""domain.formatting.abbreviate: names cut from the middle, both ends kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.formatting import abbreviate


def test_both_ends_of_a_worker_name_survive():
    assert abbreviate("sim-host-a-1234-worker-17", 14) == "sim-hos…ker-17"
    assert abbreviate("short", 14) == "short"


@given(st.text(min_size=0, max_size=60), st.integers(min_value=1, max_value=40))
def test_fits_keeps_both_ends_and_marks_the_cut(text, width):
    out = abbreviate(text, width)
    assert len(out) <= width
    if len(text) <= width:
        assert out == text
    else:
        assert "…" in out
        head, _, tail = out.partition("…")
        assert text.startswith(head) and text.endswith(tail)
