"""ponder server."""
