"""screens/queue_status.py: the queue's status line fits its width in the order the
operator must read it — an armed bulk action or a paused feed first, then the sort, the
counts, and the filter text whole when the width allows (no Textual, no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.screens.queue_status import StatusLine, filter_status_line

FILTERS = st.sampled_from(["", "status:failed", "status:succeeded type:implement_idea", "error~'a b c' since:2h"])


def status(**kw) -> StatusLine:
    return StatusLine(
        **{"filter_text": "", "matching": 40, "cap": 10_000, "sort": "id", "descending": True, "loaded": 40,
           "marked": 0, "armed": False, "paused": False, **kw}
    )  # fmt: skip


def test_wide_lines_say_the_sort_in_words_and_narrow_ones_keep_the_filter():
    wide = filter_status_line(status(filter_text="status:failed"), 200).plain
    assert wide == "sort id desc (newest first) · 40 matching · 40 loaded · filter: status:failed"
    at_100 = filter_status_line(status(filter_text="status:succeeded type:implement_idea", matching=1034), 98).plain
    assert at_100 == "sort id desc · 1,034 matching · 40 loaded · filter: status:succeeded type:implement_idea"
    assert filter_status_line(status(matching=10_001), 200).plain.startswith("sort id desc (newest first) · 10,000+")


@given(
    filter_text=FILTERS,
    armed=st.booleans(),
    paused=st.booleans(),
    marked=st.integers(0, 3),
    descending=st.booleans(),
    width=st.integers(20, 200),
)
def test_alarms_come_first_and_the_filter_is_whole_when_it_can_be(
    filter_text, armed, paused, marked, descending, width
):
    s = status(filter_text=filter_text, armed=armed, paused=paused, marked=marked, descending=descending)
    plain = filter_status_line(s, width).plain
    alarms = [a for on, a in ((armed, "NEXT ACTION: WHOLE FILTER"), (paused, "LIVE PAUSED")) if on]
    assert plain.startswith("".join(f" {a}  " for a in alarms))
    rest = plain.removeprefix("".join(f" {a}  " for a in alarms))
    assert rest.startswith(f"{marked} marked · " if marked else "sort id ")
    assert plain.endswith(f"filter: {filter_text or '(none)'}")
    head = "".join(f" {a}  " for a in alarms) + (f"{marked} marked · " if marked else "")
    order = "desc" if descending else "asc"
    shortest = f"{head}sort id {order} · 40 matching · filter: {filter_text or '(none)'}"
    if width >= len(shortest):  # the shortest wording fits: nothing is cut
        assert len(plain) <= width, plain
