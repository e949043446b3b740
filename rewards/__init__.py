"""ponder rewards."""
