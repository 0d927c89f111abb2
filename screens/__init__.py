"""Screens: one module per screen; each composes widgets and asks services for data."""
