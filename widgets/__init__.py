"""Widgets: reusable, data-agnostic components (they never know about tasks or SQL)."""
