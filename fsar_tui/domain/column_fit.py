"""Which table columns fit a terminal's width, by priority, measured on the content.

A table whose columns are chosen by fixed width thresholds hides what matters when the
content is wider than planned (long amounts, several currencies) and wastes room when it
is narrower. Here the columns are taken in priority order while their measured widths
fit; the first column (the row's key: a type, model or idea name) is always shown, and
is narrowed — cut from the middle by the caller — when the `core` columns after it would
not fit beside it otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

GAP = 2  # cells after every column (widgets/keyed_table.GAP)
LEAD = 1 + GAP  # the keyed table's mark column


def fit_columns(
    widths: Mapping[str, int],
    priority: Sequence[str],
    available: int,
    *,
    core: int = 0,
    narrowest_key: int = 10,
) -> tuple[tuple[str, ...], int]:
    """(columns shown, in priority order; width of the key column) for a table
    `available` cells wide. `widths`: each column's width (header and cells);
    `priority`: the key column first. The first `core` columns after the key keep their
    place by narrowing the key down to `narrowest_key`; the others are added in order
    while they fit, and the first that does not fit ends the list."""
    key, rest = priority[0], list(priority[1:])
    room = available - LEAD
    core_width = sum(widths[c] + GAP for c in rest[:core])
    key_width = max(min(widths[key], narrowest_key), min(widths[key], room - core_width - GAP))
    used = key_width + GAP
    shown = [key]
    for name in rest:
        if used + widths[name] + GAP > room:
            break
        used += widths[name] + GAP
        shown.append(name)
    return tuple(shown), key_width
