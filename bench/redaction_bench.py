"""Redaction benchmarks (issue 15: redaction linear, ≥ 10 MB/s on 1 MB inputs of each
shape — log text, base64url, emails, JSON).

Same process, same run, no database: the redaction policy in force (domain/redact.py)
over inputs of 0.25, 0.5, 1 and 2 MB of each shape, the ratio time(2 MB) / time(1 MB)
(linear: ≈ 2; quadratic: ≈ 4) and the throughput at 1 MB; then the naive approach —
the patterns the policy had before (kept here, verbatim) — on the same shapes: at the
same sizes where it finishes, and at 10 k / 20 k / 40 k characters where it is
quadratic (its email pattern restarts at every position of a run of local-part
characters: base64url-looking text of 1 MB ran for minutes), with its own doubling ratio.
JSON is a parsed document through `redact_value` (what the screens, the gate and
anonymize call) and its text through `Policy.json_text` (deep documents, the display).
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Callable
from typing import Any

from bench.common import print_table
from fsar_tui.domain.detectors import luhn_ok
from fsar_tui.domain.redact import Policy

MB = 1_000_000
SIZES = (MB // 4, MB // 2, MB, 2 * MB)

# -- the shapes ----------------------------------------------------------------------------


def log_text(n: int, rnd: random.Random) -> str:
    levels = ("INFO", "WARN", "ERROR", "DEBUG")
    lines: list[str] = []
    size = 0
    while size < n:
        line = (
            f"2026-05-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:"
            f"{rnd.randint(0, 59):02d}Z {rnd.choice(levels)} worker-{rnd.randint(1, 64)} task {rnd.randint(1, 10**7)} "
            + rnd.choice(
                (
                    f"finished in {rnd.random() * 100:.2f}s status=ok attempts={rnd.randint(1, 3)}",
                    f"retrying after HTTP 503 from https://api.example.com/v1/items/{rnd.randint(1, 99999)}",
                    "model gpt-4o returned 1,204 output tokens; cost 0.0123 USD",
                    f"user ops+{rnd.randint(1, 999)}@example.com asked for a refund of order {rnd.randint(1, 10**6)}",
                    f"Authorization: Bearer {''.join(rnd.choices(string.ascii_letters, k=24))} rejected",
                    'Traceback (most recent call last): File "/srv/agent/run.py", line 42, in main',
                )
            )
            + "\n"
        )
        lines.append(line)
        size += len(line)
    return "".join(lines)[:n]


def base64url(n: int, rnd: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(rnd.choices(alphabet, k=n))


def emails(n: int, rnd: random.Random) -> str:
    names = ("jane.doe", "ops+alerts", "j_smith42", "x", "billing-team", "a.b.c.d")
    domains = ("example.com", "mail.example.co.uk", "corp.example", "e.io")
    parts: list[str] = []
    size = 0
    while size < n:
        part = f"cc {rnd.choice(names)}@{rnd.choice(domains)}, "
        parts.append(part)
        size += len(part)
    return "".join(parts)[:n]


def json_document(n: int, rnd: random.Random) -> str:
    """A payload-like document of about n characters: records with personal fields, free
    text with emails and phone numbers, ids, nested lists."""
    records: list[dict[str, Any]] = []
    size = 2
    while size < n:
        record = {
            "id": rnd.randint(1, 10**9),
            "name": "Jane Doe",
            "note": f"call +1 415 555 {rnd.randint(1000, 9999)} or mail jane{rnd.randint(1, 99)}@example.com",
            "steps": ["fetch", "parse", {"took_ms": rnd.randint(1, 5000), "ok": True}],
            "ref": base64url(22, rnd),
            "meta": {"tags": ["a", "b"], "score": rnd.random()},
        }
        records.append(record)
        size += len(json.dumps(record)) + 2
    return json.dumps({"records": records})


# -- the naive approach: the patterns the policy had before issue 15 -------------------------

_NAIVE = [
    ("bearer", re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"), lambda m: m.group(1) + "[REDACTED:bearer]"),
    (
        "api_key",
        re.compile(
            r"\b(?:sk|pk|rk)[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9_\-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}"
            r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_\-]{30,}"
        ),
        lambda m: "[REDACTED:api_key]",
    ),
    (
        "secret",
        re.compile(
            r"(?i)((?:api[_-]?key|secret|token|password|passwd|access[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
            r"([^\s\"',;}{]{6,})"
        ),
        lambda m: m.group(0) if m.group(2).startswith("[REDACTED") else m.group(1) + "[REDACTED:secret]",
    ),
    (
        "email",
        re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
        lambda m: "[REDACTED:email]",
    ),
    (
        "card",
        re.compile(r"(?<![\d])(?:\d[ \-]?){12,18}\d(?![\d])"),
        lambda m: "[REDACTED:card]" if luhn_ok(re.sub(r"\D", "", m.group(0))) else m.group(0),
    ),
    (
        "phone",
        re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)[ .\-]?)?\d{2,4}(?:[ .\-]\d{2,4}){2,4}(?![\w])"),
        lambda m: (
            m.group(0)
            if re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}", m.group(0))
            or not ((7 if m.group(0).startswith("+") else 9) <= len(re.sub(r"\D", "", m.group(0))) <= 15)
            else "[REDACTED:phone]"
        ),
    ),
]


def naive_text(text: str) -> str:
    for _, pattern, rewrite in _NAIVE:
        text = pattern.sub(rewrite, text)
    return text


def naive_value(value: Any, fields: frozenset[str]) -> Any:
    """The old recursive walk: every string through every pattern, one call each."""
    if isinstance(value, dict):
        return {
            naive_text(k): "[REDACTED:field]" if v not in (None, "") and k.lower() in fields else naive_value(v, fields)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [naive_value(v, fields) for v in value]
    if isinstance(value, str):
        return naive_text(value)
    return value


# -- measuring ---------------------------------------------------------------------------------


def _best(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` runs, in seconds of CPU (other processes share the cores)."""
    samples = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        samples.append(time.process_time() - t)
    return min(samples)


def _shapes(policy: Policy) -> dict[str, tuple[Callable[[int, random.Random], str], Callable[[str], object]]]:
    def parsed(doc: str) -> Callable[[], object]:
        value = json.loads(doc)
        return lambda: policy.value(value)

    return {
        "log text": (log_text, lambda s: lambda: policy.text(s)),
        "base64url": (base64url, lambda s: lambda: policy.text(s)),
        "emails": (emails, lambda s: lambda: policy.text(s)),
        "JSON (redact_value)": (json_document, parsed),
        "JSON text (json_text)": (json_document, lambda s: lambda: policy.json_text(s)),
    }


def measure(repeat: int = 3) -> tuple[list[list[object]], list[list[object]]]:
    policy = Policy()
    rows: list[list[object]] = []
    naive_rows: list[list[object]] = []
    for name, (make, runner) in _shapes(policy).items():
        rnd = random.Random(15)
        inputs = {size: make(size, rnd) for size in SIZES}
        times = {size: _best(runner(text), repeat) for size, text in inputs.items()}  # type: ignore[operator]
        mb_s = len(inputs[MB]) / MB / times[MB]
        rows.append(
            [name]
            + [f"{times[s] * 1000:,.0f} ms" for s in SIZES]
            + [f"{times[2 * MB] / times[MB]:.2f}", f"{mb_s:,.1f} MB/s", "yes" if mb_s >= 10 else "NO"]
        )
        naive_rows.append(_naive(name, make, policy))
    return rows, naive_rows


def _naive(name: str, make: Callable[[int, random.Random], str], policy: Policy) -> list[object]:
    rnd = random.Random(15)
    if name.startswith("JSON"):
        doc = make(MB, rnd)
        value = json.loads(doc)
        if name.startswith("JSON text"):
            return [name, "-", "-", "(no naive text scrub: it walked parsed values)", "", ""]
        t = _best(lambda: naive_value(value, policy.fields), 1)
        new = _best(lambda: policy.value(value), 3)
        return [name, "1 MB", f"{t * 1000:,.0f} ms", f"{new * 1000:,.0f} ms", f"{t / new:,.1f}× faster", ""]
    if name == "base64url":  # quadratic: 1 MB would take minutes
        sizes = (10_000, 20_000, 40_000)
        texts = [make(n, rnd) for n in sizes]
        t = [_best(lambda s=s: naive_text(s), 1) for s in texts]
        new = [_best(lambda s=s: policy.text(s), 3) for s in texts]
        return [
            name,
            "10 k / 20 k / 40 k",
            " / ".join(f"{x * 1000:,.0f}" for x in t) + " ms",
            " / ".join(f"{x * 1000:,.1f}" for x in new) + " ms",
            f"{t[2] / new[2]:,.0f}× faster at 40 k",
            f"{t[2] / t[1]:.1f} (quadratic: 4)",
        ]
    text = make(MB, rnd)
    t = _best(lambda: naive_text(text), 1)
    new = _best(lambda: policy.text(text), 3)
    return [name, "1 MB", f"{t * 1000:,.0f} ms", f"{new * 1000:,.0f} ms", f"{t / new:,.1f}× faster", ""]


def run() -> None:
    rows, naive_rows = measure()
    print_table(
        "Redaction throughput (CPU time, best of 3), linear: time(2 MB) / time(1 MB) ≈ 2; goal ≥ 10 MB/s at 1 MB",
        ["shape", "0.25 MB", "0.5 MB", "1 MB", "2 MB", "2 MB / 1 MB", "at 1 MB", "≥ 10 MB/s"],
        rows,
    )
    print_table(
        "Redaction against the naive approach (the patterns before issue 15), same inputs",
        ["shape", "size", "naive", "now", "ratio", "naive doubling"],
        naive_rows,
    )


if __name__ == "__main__":
    run()
