"""A panel of rows drawn for its own width (the queue screen's running and workers panels).

A TextPanel cuts each line at its edge with an ellipsis, which is right for prose and
wrong for a line of fields: a worker's name cut there loses its end — the part that
tells it from the others. A SizedPanel is given a function of its content width that
returns the heading lines, the rows and how many items there are in all, and calls it
again whenever that width changes, so the rows are laid out for the room they have.
Fitting the rows to the height (and saying "… n more") is TextPanel's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text

from fsar_tui.widgets.text_panel import TextPanel

Drawing = tuple[Sequence[Text], Sequence[Text], int | None]  # heading lines, rows, total (None: the rows)
UNMEASURED_WIDTH = 30  # before the first layout; the first resize draws again


class SizedPanel(TextPanel):
    def __init__(self, text: Text | None = None, **kwargs) -> None:
        super().__init__(text, **kwargs)
        self.draw_for: Callable[[int], Drawing] | None = None

    @property
    def width_for_rows(self) -> int:
        return self.content_region.width or UNMEASURED_WIDTH

    def draw(self, draw_for: Callable[[int], Drawing]) -> None:
        """Show what `draw_for(width)` returns, now and after every change of width."""
        self.draw_for = draw_for
        self._draw()

    def on_resize(self) -> None:
        if self.draw_for is not None:
            self._draw()

    def _draw(self) -> None:
        assert self.draw_for is not None
        head, rows, total = self.draw_for(self.width_for_rows)
        self.show_rows(head, rows, total=total)
