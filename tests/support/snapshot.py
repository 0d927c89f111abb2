"""SVG snapshot plumbing shared by the screen snapshot tests.

A picture is taken once two consecutive ones agree (layout settles over a few
refreshes, later on a loaded machine), then compared with tests/snapshots/<name>.
Inputs stop blinking first: a blinking cursor is drawn or not by the clock, and two
pictures 0.1 s apart agree in either phase (the rollback dialog's snapshot differed
between machines by that one cell);
FSAR_UPDATE_SNAPSHOTS=1 rewrites them (look at them before committing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"
UPDATE = os.environ.get("FSAR_UPDATE_SNAPSHOTS") == "1"


async def settled_svg(app, pilot) -> str:
    from textual.widgets import Input

    for field in app.screen.query(Input):
        field.cursor_blink = False  # the cursor drawn steadily, whatever the clock
    previous = None
    for _ in range(100):
        await pilot.pause(0.1)
        svg = app.export_screenshot(title="fsar-tui")
        if svg == previous:
            return svg
        previous = svg
    pytest.fail("the screen never settled into a stable picture")


def check_snapshot(svg: str, name: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        path.write_text(svg)
        if not UPDATE:
            pytest.fail(f"snapshot {name} was missing and has been written; check it and commit it")
    if svg != path.read_text():
        failed = Path(os.environ.get("TMPDIR", "/tmp")) / f"failed-{name}"
        failed.write_text(svg)
        pytest.fail(f"{name} differs; this run's is {failed} (FSAR_UPDATE_SNAPSHOTS=1 regenerates)")
