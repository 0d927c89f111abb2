"""When a screen re-reads (screens/reload_schedule.py): at once when marked while someone
is at the panel; idle (no key for IDLE_AFTER_S), at most every `idle_every` seconds."""

from __future__ import annotations

import time

from fsar_tui.screens.reload_schedule import IDLE_AFTER_S, ReloadSchedule


class Launched:
    def __init__(self) -> None:
        self.n = 0
        self.is_running = False

    def __call__(self) -> Launched:
        self.n += 1
        return self


def test_marks_wait_for_the_idle_interval_and_a_key_press_ends_it():
    launch = Launched()
    schedule = ReloadSchedule(every=5, idle_every=30)
    schedule.tick(True, launch)  # the first read
    schedule.done()
    schedule.mark()
    schedule.tick(True, launch)  # someone at the panel: a mark reads at once
    schedule.done()
    assert launch.n == 2
    schedule.input_at = time.monotonic() - IDLE_AFTER_S - 1  # nobody pressed a key for 30 s
    schedule.last = time.monotonic() - 10  # the last read 10 s ago
    schedule.mark()
    schedule.tick(True, launch)
    assert launch.n == 2 and schedule.idle()  # idle: marks wait for 30 s since the last read
    schedule.last = time.monotonic() - 31
    schedule.tick(True, launch)
    assert launch.n == 3
    schedule.done()
    schedule.mark()
    schedule.touched()  # a key: live again
    schedule.tick(True, launch)
    assert launch.n == 4 and not schedule.idle()


def test_a_schedule_without_an_idle_interval_never_slows_down():
    launch = Launched()
    schedule = ReloadSchedule(every=5)
    schedule.input_at = time.monotonic() - 3600
    schedule.last = time.monotonic()
    schedule.mark()
    schedule.tick(True, launch)
    assert launch.n == 1 and not schedule.idle()
