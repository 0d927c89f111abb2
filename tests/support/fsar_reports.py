"""The example FSAR report and small helpers the parser's tests share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fsar_tui.domain.fsar_report import FsarReport, ReportError, parse_report
from fsar_tui.sim.seed import SEED_REPORT

# The one real report: the copy the package ships (the demo seeds it), so the suite does
# not depend on a file outside the repository; the test below checks it is verbatim.
SEED = SEED_REPORT.read_text(encoding="utf-8")
SEED_FILE = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_b9e95e59ee95b13b.txt"

SEED_LINES = SEED.split("\n")
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def edited(**changes: str | None) -> str:
    """The seed with whole lines replaced (by 1-based number; None deletes the line)."""
    lines = list(SEED_LINES)
    for key, new in sorted(changes.items(), key=lambda kv: -int(kv[0][1:])):
        number = int(key[1:])
        if new is None:
            del lines[number - 1]
        else:
            lines[number - 1] = new
    return "\n".join(lines)


def error_of(data: bytes | str, source: str = "r.txt") -> ReportError:
    with pytest.raises(ReportError) as info:
        parse_report(data, source)
    return info.value


def assert_error(data: bytes | str, line: int, phrase: str) -> ReportError:
    err = error_of(data)
    assert (err.line, err.source) == (line, "r.txt"), str(err)
    assert phrase in err.reason, str(err)
    assert str(err) == f"r.txt:{line}: {err.reason}"
    return err


def same_report(parsed: FsarReport, original: FsarReport) -> bool:
    return dataclasses.replace(parsed, sha256=original.sha256, source=original.source) == original
