"""strip_controls: the one sanitiser every terminal string passes (domain/sanitize.py).

Unit and property tests of what it removes: C0/C1 controls and ESC sequences (tested
in test_sanitize_redact.py too), and here the invisible format characters — bidi
overrides and isolates, zero-width and tag characters — and lone surrogates."""

from __future__ import annotations

import sys
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.sanitize import has_unsafe, strip_controls

KEPT_FORMAT = {"\u200c", "\u200d"}  # ZWNJ, ZWJ: scripts and emoji need them


def selector(cp: int) -> bool:
    """A variation selector that strip_controls removes (all but VS15/VS16)."""
    return 0xFE00 <= cp <= 0xFE0D or 0xE0100 <= cp <= 0xE01EF


def test_variation_selectors_cannot_hide_bytes_but_emoji_keep_their_presentation():
    hidden = "".join(chr(0xE0100 + b) for b in b"secret")
    assert strip_controls(f"ok{hidden}") == "ok"
    assert strip_controls("x\ufe00y") == "xy"
    assert strip_controls("\u2764\ufe0f \u2764\ufe0e") == "\u2764\ufe0f \u2764\ufe0e"


def test_the_format_class_is_exactly_unicode_category_cf_but_zwnj_and_zwj():
    stripped = []
    missed = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        cf = unicodedata.category(ch) == "Cf" and ch not in KEPT_FORMAT
        removed = strip_controls(f"a{ch}b") == "ab"
        if cf and not removed:
            missed.append(hex(cp))
        # Cn: U+13439–1343F are unassigned in Unicode 14 and format characters in 15.
        if removed and not cf and unicodedata.category(ch) not in ("Cc", "Cs", "Cn") and not selector(cp):
            stripped.append(hex(cp))
    assert missed == []
    assert stripped == []


def test_bidi_controls_are_removed_so_text_reads_as_it_is():
    # "invoice_gpj.exe" shown as "invoice_exe.jpg" with an RLO: the override must go.
    assert strip_controls("invoice_\u202egpj.exe") == "invoice_gpj.exe"
    for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c":
        assert strip_controls(f"x{ch}y") == "xy", hex(ord(ch))


def test_tag_characters_cannot_smuggle_hidden_text():
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "rm -rf")
    assert strip_controls(f"ok{hidden}") == "ok"


def test_surrogates_and_separators():
    assert strip_controls("a\ud800b") == "ab"
    assert strip_controls("a\u2028b\u2029c") == "a b c"


def test_emoji_and_scripts_keep_their_joiners():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert strip_controls(family) == family
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert strip_controls(persian) == persian


def test_clean_text_is_returned_as_is():
    text = "plain text\nwith lines and ünïcödé 漢字"
    assert strip_controls(text) is text


@given(st.text())
def test_nothing_unsafe_survives_and_a_second_pass_changes_nothing(text):
    once = strip_controls(text)
    assert not has_unsafe(once)
    assert strip_controls(once) == once


@given(st.text(alphabet=st.characters(categories=["Cf", "Cc", "Zl", "Zp"])))
def test_only_newlines_and_joiners_remain_of_invisible_text(text):
    assert set(strip_controls(text)) <= {"\n", " ", "\u200c", "\u200d"}
