"""aluo."""
