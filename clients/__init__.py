"""ponder clients."""
