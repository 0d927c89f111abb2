"""widgets/status_header.banner_line, without a terminal (issue 16, review point 4): at
any width from 60 columns the blocked banner fits, starts with the count, the key and
what blocks, and keeps the end of the scope and the reason however long the names are
(gate names and proposal ids are operator- or agent-written)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.widgets.status_header import banner_line, blocks_of

names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=200)
gates = st.lists(st.tuples(names, st.sampled_from(["all", "implement_idea", "self_improvement × gpt-4o"])), max_size=3)
proposals = st.lists(st.tuples(names, st.sampled_from([None, "idea_implementation"]), st.integers(1, 10)), max_size=3)


@given(gates, proposals, st.integers(60, 300))
def test_the_line_fits_and_keeps_count_key_scope_and_reason(gate_blocks, proposal_blocks, width):
    blocks = blocks_of(tuple(gate_blocks), tuple(proposal_blocks))
    if not blocks:
        return
    line = banner_line(blocks, width)
    assert len(line) <= width
    first = blocks[0]
    count = f" ×{len(blocks)}" if len(blocks) > 1 else ""
    prefix = f"BLOCKED{count} · {first.key} · "
    assert line.startswith(prefix)
    what, reason = (first.what, first.reason) if line[len(prefix) :].startswith(first.what) else first.terse
    assert line[len(prefix) :].startswith(f"{what} ")
    # The scope's end, then the reason, are never cut (the other screens' keys may follow).
    assert f"{first.scope[-1]}: {reason}" in line
    assert line.endswith(f": {reason}") or f": {reason} · " in line
    if len(first.name) + len(first.scope) + 80 <= width:  # room for all: nothing abbreviated
        assert f"{first.what} {first.name} stops {first.scope}: {first.reason}" in line


def test_a_long_name_is_cut_in_its_middle_and_the_other_screens_key_follows():
    blocks = blocks_of((("g" * 40 + "END", "implement_idea"),), (("p1", None, 9),))
    assert banner_line(blocks, 120) == (
        "BLOCKED ×2 · 4 Audit · hard gate " + "g" * 40 + "END stops implement_idea: failed · 5 Proposals"
    )
    narrow = banner_line(blocks, 78)
    assert narrow == "BLOCKED ×2 · 4 Audit · hard gate " + "g" * 8 + "…" + "ggggEND stops implement_idea: failed"
