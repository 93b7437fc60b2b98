"""removedo."""
