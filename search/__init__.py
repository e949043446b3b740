"""ponder search."""
