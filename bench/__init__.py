"""ponder bench."""
