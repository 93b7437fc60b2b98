"""youcam."""
