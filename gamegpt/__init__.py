"""gamegpt: small GPTs that learn games from transcripts, play them, and are measured."""

__version__ = "0.1.0"
