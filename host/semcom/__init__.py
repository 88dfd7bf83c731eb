"""gr-semcom host package."""
