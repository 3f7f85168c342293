"""Players: anything that picks a move for a game history (see base.py); specs name them (spec.py)."""
