"""Short labels for names in narrow panels, keeping the part that tells them apart.

A fleet's worker ids share most of their text: `sim-vm-25294-0` … `sim-vm-25294-23`. A
panel 13 columns wide that cuts each name on its own (from the end, or even from the
middle) shows the same thing 24 times. `distinct_labels` looks at the names shown
together: when they do not all fit, the prefix they all share (up to a separator) is
replaced by "…" — `…-0` … `…-23` — and only a label still too long is cut: from the
middle (`domain.formatting.abbreviate`, both ends kept) or to its end, whichever keeps the
labels apart.

`first_that_fits` picks the longest wording of a heading that the width holds, so a
narrow panel says something whole ("last 12s ago") rather than the start of a
sentence cut by an ellipsis ("last report 1…").
"""

from __future__ import annotations

from collections.abc import Sequence

from fsar_tui.domain.formatting import abbreviate

SEPARATORS = frozenset("-_.:/@ ")


def shared_prefix(names: Sequence[str]) -> str:
    """The text every one of `names` starts with, up to (not including) its last
    separator — `sim-vm-25294` for `sim-vm-25294-3` and `sim-vm-25294-17` — or "" when
    fewer than two different names share one."""
    distinct = set(names)
    if len(distinct) < 2:
        return ""
    first, last = min(distinct), max(distinct)  # the common prefix of all is theirs
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    cut = max((i for i in range(n) if first[i] in SEPARATORS), default=-1)
    return first[:cut] if cut > 0 else ""


def distinct_labels(names: Sequence[str], width: int) -> dict[str, str]:
    """Each of `names` as a label of at most `width` characters: the name itself when
    every name fits; else the name with the prefix they all share replaced by "…" (when
    that saves room). A label still too long is cut — from the middle, both ends kept
    (`abbreviate`), or, when a shared prefix was dropped, to its end ("…294-15" rather
    than "…-2…-15") — whichever keeps the labels apart, that one first."""
    width = max(width, 1)
    if all(len(name) <= width for name in names):
        return {name: name for name in names}
    prefix = shared_prefix(names)
    full = {name: "…" + name[len(prefix) :] if len(prefix) > 1 else name for name in names}

    def middle(label: str) -> str:
        return abbreviate(label, width)

    def end(label: str) -> str:
        if len(label) <= width:
            return label
        return "…" + label[len(label) - width + 1 :] if width > 1 else "…"

    cuts = (end, middle) if len(prefix) > 1 else (middle, end)
    for cut in cuts:
        labels = {name: cut(label) for name, label in full.items()}
        if len(set(labels.values())) == len(labels):
            return labels
    return {name: cuts[0](label) for name, label in full.items()}


def first_that_fits(width: int, *wordings: str) -> str:
    """The first of `wordings` (longest first) that `width` holds; else the last one cut
    from the middle."""
    for wording in wordings:
        if len(wording) <= width:
            return wording
    return abbreviate(wordings[-1], width) if wordings else ""
