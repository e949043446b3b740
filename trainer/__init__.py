"""ponder trainer."""
