"""Names of the decoding policies (see `model_player`), importable without torch so that `gamegpt uci`
can answer `uci` before the model's libraries load."""

POLICIES = ("raw", "retry", "mask")
RETRY_TEMPERATURES = (0.001, 0.2, 0.4, 0.5, 0.5)
"""Karvonen's five tries per move (chess_gpt_eval): the first legal sample is played."""
