"""Untrusted text: control sequences stripped, markup inert, secrets and PII redacted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from fsar_tui.domain.redact import luhn_ok, redact
from fsar_tui.domain.sanitize import clip, one_line, strip_controls
from fsar_tui.widgets.safe_text import inert, safe_text


def render(text) -> str:
    console = Console(force_terminal=True, color_system="truecolor", width=200)
    with console.capture() as cap:
        console.print(text, end="")
    return cap.get()


def test_markup_is_inert():
    shown = safe_text("[bold red]x[/] and [link=http://evil]click[/link]")
    assert shown.plain == "[bold red]x[/] and [link=http://evil]click[/link]"
    assert shown.spans == []


def test_osc52_and_csi_are_removed():
    evil = "ok\x1b]52;c;ZXZpbA==\x07 \x1b[2J\x1b[31mred\x1b[0m \x9b31m \x1bP+q\x1b\\ bell\x07 tab\tend"
    cleaned = strip_controls(evil)
    assert cleaned == "ok red   bell tab    end"
    assert "\x1b" not in render(inert(evil))


@given(st.text())
def test_no_control_character_survives(text):
    cleaned = strip_controls(text)
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in cleaned)


@given(st.text())
def test_rendering_untrusted_text_emits_no_escape_except_styling(text):
    out = render(safe_text(text))
    # Rich adds no styling to a plain Text, so no ESC may appear at all.
    assert "\x1b" not in out


def test_secrets_and_personal_data_are_redacted():
    text = (
        "key sk-proj-abcdefghijklmnop1234 and Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y "
        "mail ops+alice@example.com call +1 415 555 0142 card 4242 4242 4242 4242 "
        'json {"api_key": "hunter2hunter2"} aws AKIAABCDEFGHIJKLMNOP'
    )
    out = redact(text)
    for secret in (
        "sk-proj-abcdefghijklmnop1234",
        "eyJhbGciOiJIUzI1NiJ9",
        "ops+alice@example.com",
        "415 555 0142",
        "4242 4242 4242 4242",
        "hunter2hunter2",
        "AKIAABCDEFGHIJKLMNOP",
    ):
        assert secret not in out, secret
    assert "[REDACTED:card]" in out and "[REDACTED:email]" in out and "[REDACTED:bearer]" in out


def test_numbers_that_fail_luhn_stay_visible():
    assert redact("order 4242 4242 4242 4241 shipped") == "order 4242 4242 4242 4241 shipped"
    assert redact("task 1234567 took 2026-01-02") == "task 1234567 took 2026-01-02"


def luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if luhn_ok(prefix + d):
            return prefix + d
    raise AssertionError


@given(st.text(alphabet="0123456789", min_size=12, max_size=18))
def test_every_luhn_valid_card_number_is_redacted(prefix):
    card = luhn_complete(prefix)
    grouped = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    for shown in (card, grouped):
        assert card not in redact(f"paid with {shown} today").replace(" ", "")


@given(st.text())
def test_redaction_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@given(st.text(), st.integers(1, 300))
def test_clip_is_one_line_at_most_limit_and_keeps_what_fits(text, limit):
    out = clip(text, limit)
    assert len(out) <= limit and "\n" not in out
    whole = one_line(text)
    assert out == whole if len(whole) <= limit else (out.endswith("…") and whole.startswith(out[:-1]))
