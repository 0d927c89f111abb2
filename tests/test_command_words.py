"""`:` command words and history rules (pure): abbreviation never guesses, completion
and suggestion, and the history's cleaning, order and walk; examples and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsar_tui.domain.command_history import CAP, HistoryWalk, clean, from_lines, remember, to_lines
from fsar_tui.domain.command_words import CommandWords, describe
from fsar_tui.domain.sanitize import has_unsafe
from fsar_tui.screens.command_history_file import load, save
from fsar_tui.screens.command_mode import COMMAND_WORDS

words_st = st.lists(st.text("abcdefg", min_size=1, max_size=6), min_size=1, max_size=8, unique=True)


@pytest.mark.parametrize(
    "typed,word",
    [
        ("prof", "profiles"),
        ("PROP", "proposals"),
        ("rol", None),  # no such word
        ("ro", "roi"),
        ("a", "audit"),
        ("que", "queue"),
        ("q", "quit"),
        ("h", "help"),
        ("?", "help"),
        ("1", "queue"),
        ("5", "proposals"),
        ("qui", "quit"),
    ],
)
def test_the_apps_words(typed, word):
    assert COMMAND_WORDS.resolve(typed).word == word


def test_an_ambiguous_prefix_names_the_candidates_and_picks_none():
    found = COMMAND_WORDS.resolve("pro")
    assert found.word is None and found.ambiguous
    assert describe(found, COMMAND_WORDS.words) == "ambiguous: profiles, proposals"
    assert COMMAND_WORDS.resolve("qu").candidates == ("queue", "quit")
    assert describe(COMMAND_WORDS.resolve("zz"), ("a", "b")) == "unknown command 'zz': try a, b"


def test_completion_and_suggestion():
    assert COMMAND_WORDS.complete("prof").line == "profiles "
    assert COMMAND_WORDS.complete(":ro").line == ":roi "  # the bar's colon is kept
    assert COMMAND_WORDS.complete("p").line == "pro"  # as far as profiles and proposals agree
    done = COMMAND_WORDS.complete("pro")
    assert done.line is None and done.candidates == ("profiles", "proposals")
    assert COMMAND_WORDS.complete("roi 7").line is None  # arguments are left alone
    assert COMMAND_WORDS.suggest(":prof") == ":profiles"
    assert COMMAND_WORDS.suggest("pro") is None and COMMAND_WORDS.suggest("roi") is None
    assert COMMAND_WORDS.suggest("roi 7") is None and COMMAND_WORDS.suggest(":") is None


def test_words_must_be_distinct_and_aliases_must_name_one():
    with pytest.raises(ValueError):
        CommandWords(("a", "A"))
    with pytest.raises(ValueError):
        CommandWords(("a",), {"x": "b"})


@given(words_st, st.data())
def test_every_unique_prefix_resolves_and_a_shared_one_never_picks(words, data):
    table = CommandWords(tuple(words))
    word = data.draw(st.sampled_from(words))
    prefix = word[: data.draw(st.integers(1, len(word)))]
    sharing = tuple(w for w in words if w.startswith(prefix))
    found = table.resolve(prefix)
    if prefix in words:
        assert found.word == prefix  # the word itself always wins
    elif len(sharing) == 1:
        assert found.word == word
    else:
        assert found.word is None and found.ambiguous and found.candidates == sharing


@given(words_st, st.text(max_size=8))
def test_resolution_only_names_a_word_the_text_abbreviates(words, typed):
    found = CommandWords(tuple(words)).resolve(typed)
    key = typed.strip().lower()
    if found.word is not None:
        assert key == found.word or [w for w in words if w.startswith(key)] == [found.word]


@given(words_st, st.data())
def test_tab_completion_only_extends_and_stays_within_the_candidates(words, data):
    table = CommandWords(tuple(words))
    word = data.draw(st.sampled_from(words))
    prefix = word[: data.draw(st.integers(1, len(word)))]
    done = table.complete(prefix)
    if done.line is not None:
        assert done.line.startswith(prefix)
        assert all(w.startswith(done.line.strip()) for w in done.candidates)
        if done.line.endswith(" "):
            assert table.resolve(done.line.strip()).word == done.line.strip()


def test_history_order_cap_and_walk():
    history: list[str] = []
    for entry in ("queue", "roi 7d", ":queue", "  ", "audit"):
        history = remember(history, entry, cap=3)
    assert history == ["audit", "queue", "roi 7d"]  # newest first, once each, blanks dropped
    assert remember(history, "x", cap=2) == ["x", "audit"]
    assert from_lines(to_lines(history)) == history
    walk = HistoryWalk(history, "dr")
    assert [walk.older(), walk.older(), walk.older(), walk.older()] == ["audit", "queue", "roi 7d", None]
    assert [walk.newer(), walk.newer(), walk.newer(), walk.newer()] == ["queue", "audit", "dr", None]


def test_a_hostile_history_line_is_cleaned():
    line = "\x1b]52;c;aGk=\x07queue \x1b[31m[bold red]boom[/]\x1b[0m\u202e\x00  x\r"
    assert clean(line) == "queue [bold red]boom[/] x"
    assert len(clean("a" * 10_000)) == 500


@given(st.lists(st.text(), max_size=30))
def test_whatever_the_file_holds_the_history_is_plain_and_capped(lines):
    history = from_lines(lines, cap=10)
    assert len(history) <= 10 and len(set(history)) == len(history)
    assert all(e and not has_unsafe(e) and "\n" not in e for e in history)


def test_the_file_round_trips_and_a_write_that_fails_says_so(tmp_path):
    path = tmp_path / "state" / "fsar-tui" / "command_history"
    assert load(path) == []
    assert save(path, ["roi 7d", "queue"])
    assert path.read_text() == "queue\nroi 7d\n"
    assert load(path) == ["roi 7d", "queue"]
    path.write_text("\n".join(f"cmd {i}" for i in range(CAP + 50)))
    assert len(load(path)) == CAP and load(path)[0] == f"cmd {CAP + 49}"
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert not save(blocked / "fsar-tui" / "command_history", ["queue"])  # a file where a directory should be
