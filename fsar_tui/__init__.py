"""fsar-tui: the operators' terminal control panel for autonomous AI task-execution systems."""

__version__ = "0.1.0"
