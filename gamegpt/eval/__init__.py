"""Evaluation: arenas whose game records are scored."""
