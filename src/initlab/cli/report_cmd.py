"""CLI commands (filled in by their issue)."""

COMMANDS: list = []
