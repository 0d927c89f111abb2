"""Allows `python -m fsar_tui`."""

from fsar_tui.cli import main

raise SystemExit(main())
