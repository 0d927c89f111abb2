"""The redaction policy on hostile size and shape (issue 15 point 2): the same results as
before, in linear time, at any depth.

- Every rewritten detector is compared with the pattern it replaced (kept here verbatim,
  the slow reference) on random text biased towards what each one reads.
- Idempotent: a token a later detector places can open a word boundary for an earlier
  one (`4242…4242bearer sk-…`, found here), so the policy runs another round then.
- JSON: Policy.value against the old recursive walk; the text scrubber
  (domain/json_scrub) against Policy.value; value_findings against the old definition.
- Linear: the email scan's work is counted on 1 MB adversarial inputs (structural); the
  other detectors' CPU time is compared between 1 MB and 2 MB of each adversarial shape
  (linear ≈ 2, quadratic ≈ 4; the bound is loose and uses the best of three runs).
- Depth: a 3,000-deep value and document are redacted without RecursionError.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsar_tui.domain import detectors
from fsar_tui.domain.json_text import JsonText, loads_bounded
from fsar_tui.domain.redact import MAX_DEPTH, Policy, findings, redact, value_findings

# -- the patterns before issue 15: the reference ---------------------------------------------

OLD = {
    "bearer": re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"),
    "api_key": re.compile(
        r"\b(?:sk|pk|rk)[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9_\-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}"
        r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_\-]{30,}"
    ),
    "secret": re.compile(
        r"(?i)((?:api[_-]?key|secret|token|password|passwd|access[_-]?key)[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}{]{6,})"
    ),
    "email": re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
    "card": re.compile(r"(?<![\d])(?:\d[ \-]?){12,18}\d(?![\d])"),
    "phone": re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)[ .\-]?)?\d{2,4}(?:[ .\-]\d{2,4}){2,4}(?![\w])"),
}


def _old_phone(m: re.Match[str]) -> str:
    text = m.group(0)
    digits = re.sub(r"\D", "", text)
    if re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}(:\d{2})?", text):
        return text
    return "[REDACTED:phone]" if (7 if text.startswith("+") else 9) <= len(digits) <= 15 else text


OLD_REWRITE = {
    "bearer": lambda t: OLD["bearer"].sub(lambda m: m.group(1) + "[REDACTED:bearer]", t),
    "api_key": lambda t: OLD["api_key"].sub("[REDACTED:api_key]", t),
    "secret": lambda t: OLD["secret"].sub(
        lambda m: m.group(0) if m.group(2).startswith("[REDACTED") else m.group(1) + "[REDACTED:secret]", t
    ),
    "email": lambda t: OLD["email"].sub("[REDACTED:email]", t),
    "card": lambda t: OLD["card"].sub(
        lambda m: "[REDACTED:card]" if detectors.luhn_ok(re.sub(r"\D", "", m.group(0))) else m.group(0), t
    ),
    "phone": lambda t: OLD["phone"].sub(_old_phone, t),
}


def old_value(value, policy: Policy):
    """The old recursive Policy.value, for values shallow enough to recurse."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            hidden = "[REDACTED:field]" if v not in (None, "") and str(k).lower() in policy.fields else None
            new = hidden if hidden is not None else old_value(v, policy)
            key = old_text(k) if isinstance(k, str) else k
            while key in out:
                key += "'"
            out[key] = new
        return out
    if isinstance(value, list):
        return [old_value(v, policy) for v in value]
    if isinstance(value, str):
        return old_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**8:
        redacted = old_text(str(value))
        return value if redacted == str(value) else redacted
    return value


def old_text(text: str) -> str:
    """The old detectors in order, rounds repeated until nothing changes (the policy repeats
    a round only while a token touches a word character: this checks that shortcut)."""
    for _ in range(4):
        before = text
        for name in detectors.DETECTORS:
            text = OLD_REWRITE[name](text)
        if text == before:
            break
    return text


# -- random text that reaches every branch ---------------------------------------------------

WORDS = [
    "bearer ", "Bearer\n", "sk-", "sk_live_", "pk-test-", "rk_", "ghp_", "xoxb-", "AKIA", "AIza", "api_key", "ApiKey",
    "token", "TOKEN: '", "password=", "passwd", "secret", "access-key", "\u017fecret", "to\u212aen", "@", ".com",
    "a@b.com.x@c.com", "jane.doe@example.co.uk", "+1 ", "(415) ", "4242 4242 4242 4242", "4111-1111-1111-1111",
    "2024-01-02", "12:30", "[REDACTED:x]", "0142", "555 ", "\u0663\u0663", "\x1c", " ",
]  # fmt: skip
ALPHABET = "aAbBsSpPtTkKxXeEoOrRzZcC0123456789 .-_+()@:=\"',;{}\n\t/~%\u0130\u212a"
chunk = st.one_of(st.sampled_from(WORDS), st.text(alphabet=ALPHABET, max_size=12))
hostile_text = st.lists(chunk, max_size=14).map("".join)
ascii_text = hostile_text.map(lambda s: s.encode("ascii", "ignore").decode())
padded = st.tuples(hostile_text, st.integers(0, 400)).map(lambda p: p[0] + " " * p[1])  # the sparse paths
ANY_TEXT = st.one_of(hostile_text, ascii_text, padded, st.text(max_size=40))

SETTINGS = settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)


@pytest.mark.parametrize("name", list(detectors.DETECTORS))
@SETTINGS
@given(text=ANY_TEXT)
def test_each_detector_matches_exactly_what_its_old_pattern_did(name, text):
    assert detectors.DETECTORS[name](text) == OLD_REWRITE[name](text)


@SETTINGS
@given(text=st.text(alphabet="ab1.-_%+@ xZ,", max_size=40).map(lambda s: s.replace("Z", "com")))
def test_the_email_scan_and_the_fast_path_match_the_old_pattern(text):
    old = OLD_REWRITE["email"](text)
    assert detectors.redact_emails(text) == old
    assert detectors.redact_emails(text, detectors.ScanWork()) == old  # the scan, whatever the density


@SETTINGS
@given(texts=st.lists(ANY_TEXT, max_size=8))
def test_a_batch_is_redacted_as_each_string_alone(texts):
    policy = Policy()
    assert policy.texts(texts) == [policy.text(t) for t in texts] == [old_text(t) for t in texts]


@SETTINGS
@given(text=ANY_TEXT)
def test_redaction_stays_idempotent(text):
    once = redact(text)
    assert redact(once) == once


KEYS = st.one_of(st.sampled_from(["email", "Name", "TOKEN", "x", "jane@example.com", "bob@example.com", "a"]), ANY_TEXT)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.sampled_from([4242424242424242, 14155550142, 0, 123456789, -4111111111111111]),
    st.floats(allow_nan=False),
    ANY_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=25,
)


@SETTINGS
@given(value=VALUES)
def test_values_text_and_findings_agree_with_the_old_walk(value):
    policy = Policy()
    expected = old_value(value, policy)
    assert policy.value(value) == expected
    for text in (json.dumps(value, ensure_ascii=False), json.dumps(value, indent=2)):
        assert json.loads(policy.json_text(text)) == expected
    before = Counter(re.findall(r"\[REDACTED:(\w+)\]", json.dumps(value, ensure_ascii=False, default=str)))
    after = Counter(re.findall(r"\[REDACTED:(\w+)\]", json.dumps(expected, ensure_ascii=False, default=str)))
    assert value_findings(value) == sorted(after - before)


@SETTINGS
@given(value=VALUES)
def test_scrubbing_json_text_is_idempotent(value):
    once = Policy().json_text(json.dumps(value, ensure_ascii=False))
    assert Policy().json_text(once) == once


@SETTINGS
@given(value=VALUES, pick=st.integers(0, 10**6))
def test_a_document_cut_between_items_is_scrubbed_as_the_start_of_the_whole(value, pick):
    from fsar_tui.domain.json_scrub import string_tokens

    text = json.dumps({"records": [value, {"k": value}]}, ensure_ascii=False)
    parts, cuts, at = string_tokens(text, with_between=True), [], 0
    for k, part in enumerate(parts):  # positions just after a comma between tokens
        cuts += [at + i + 1 for i, ch in enumerate(part) if ch == "," and k % 2 == 0]
        at += len(part)
    cut = cuts[pick % len(cuts)] if cuts else len(text)
    head = Policy().json_text(text[:cut], partial=True)
    assert Policy().json_text(text).startswith(head)
    Policy().json_text(text[: pick % (len(text) + 1)], partial=True)  # any cut: never raises


def test_a_value_3000_deep_is_redacted_without_recursion():
    value: object = "mail jane@example.com"
    for i in range(3000):
        value = {"a": value, "email": "x"} if i % 2 else [value, "sk-proj-abcdefghijklmnop1234"]
    out = Policy().value(value)
    depth, node = 0, out
    while isinstance(node, dict | list):
        node = node["a"] if isinstance(node, dict) else node[0]
        depth += 1
    assert depth == MAX_DEPTH and isinstance(node, str)  # past the limit: the subtree as its JSON text
    assert "jane@example.com" not in node and "sk-proj" not in node and '"email":"[REDACTED:field]"' in node
    assert value_findings(value) == ["api_key", "email", "field"]


def test_a_document_3000_deep_is_kept_as_text_and_scrubbed_as_text():
    text = '{"a": ' * 3000 + '{"email": "x", "note": "call +1 415 555 0142"}' + "}" * 3000
    doc = loads_bounded(text)
    assert isinstance(doc, JsonText) and doc.why.startswith("nested deeper than 64 levels")
    scrubbed = Policy().value(doc)
    assert isinstance(scrubbed, JsonText) and "415 555" not in scrubbed.text
    assert scrubbed.text.count("{") == 3001 and '"email": "[REDACTED:field]"' in scrubbed.text
    assert value_findings(doc) == ["field", "phone"]
    assert findings("a@b.io") == ["email"]


# -- linear work on adversarial shapes -------------------------------------------------------

MB = 1_000_000
SHAPES = {
    "a": lambda n: "a" * n,
    "a.": lambda n: "a." * (n // 2),
    "base64url": lambda n: ("Zm9vYmFyLWJhel9xdXV4" * (n // 20 + 1))[:n],
    "digits": lambda n: "1" * n,
    "digits with spaces": lambda n: "1 " * (n // 2),
    "digits with dashes": lambda n: "12-" * (n // 3),
    "+1 ": lambda n: "+1 " * (n // 3),
    "spaces": lambda n: " " * n,
    "token ": lambda n: ("token" + " " * 50) * (n // 55),
    "Bearer ": lambda n: "Bearer " * (n // 7),
    "a@": lambda n: "a@" * (n // 2),
    "x@a.a.a": lambda n: "x@" + "a." * (n // 2),
    "emails": lambda n: "jane.doe@example.com, " * (n // 22),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_email_scan_looks_at_each_character_a_bounded_number_of_times(shape):
    for n in (MB, 2 * MB):
        text = SHAPES[shape](n)
        work = detectors.ScanWork()
        detectors.redact_emails(text, work)
        assert work.at_signs + work.local_chars + work.domain_chars <= 3 * len(text) + 1


def _cpu(fn, text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        fn(text)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_detector_takes_linear_time_on_adversarial_input(shape):
    small, large = SHAPES[shape](MB), SHAPES[shape](2 * MB)
    for name, fn in detectors.DETECTORS.items():
        t1, t2 = _cpu(fn, small), _cpu(fn, large)
        # Linear: ~2. Quadratic (the old email pattern): ~4, and minutes at this size.
        assert t2 <= 3.2 * t1 + 0.02, (name, shape, t1, t2)
