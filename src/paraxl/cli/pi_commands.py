"""pi_commands: registered on paraxl.cli.common.app (filled in by its issue-6 part)."""

from __future__ import annotations
