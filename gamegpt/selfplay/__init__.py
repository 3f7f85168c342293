"""Self-play: arena runs whose game records become training data."""
