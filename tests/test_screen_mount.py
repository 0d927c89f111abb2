"""Textual calls every class's `on_mount` along the MRO (most derived first), so a screen
that also calls `super().on_mount()` runs FsarScreen's twice: two 1 s tick timers, every
read scheduled twice. The rule, and the Textual behaviour it rests on."""

from __future__ import annotations

import ast
from pathlib import Path

from textual.app import App
from textual.screen import Screen

ROOT = Path(__file__).resolve().parents[1]


def test_no_screen_calls_super_on_mount():
    offenders = []
    for path in sorted((ROOT / "screens").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "on_mount"
                and isinstance(node.func.value, ast.Call)
                and getattr(node.func.value.func, "id", None) == "super"
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


async def test_textual_runs_each_classs_on_mount_once_without_super():
    calls: list[str] = []

    class Base(Screen):
        def on_mount(self) -> None:
            calls.append("base")

    class Sub(Base):
        def on_mount(self) -> None:
            calls.append("sub")

    class Demo(App):
        def on_mount(self) -> None:
            self.push_screen(Sub())

    async with Demo().run_test() as pilot:
        await pilot.pause()
    assert calls == ["sub", "base"]
