"""A person at the terminal."""

from __future__ import annotations

from typing import Any, Callable, TextIO
import sys

from gamegpt.games.base import Game
from gamegpt.players.base import Player


class HumanPlayer(Player):
    """Asks for a move on the terminal until a legal one is typed. An empty line or end of input
    raises `EOFError` (the caller decides how to end the game)."""

    name = "human"

    def __init__(self, read_line: Callable[[str], str] | None = None, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.read_line = read_line or self._read_stdin

    def _read_stdin(self, prompt: str) -> str:
        self.out.write(prompt)
        self.out.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError("end of input")
        return line

    def choose(self, game: Game[Any]) -> Any:
        legal = game.legal_moves()
        while True:
            text = self.read_line("your move: ").strip()
            if text in ("quit", "resign"):
                raise EOFError(text)
            try:
                move = game.move_from_str(text)
            except ValueError as exc:
                self.out.write(f"{exc}\n")
                continue
            if move in legal:
                return move
            self.out.write(f"illegal here: {text}; legal: {' '.join(game.move_to_str(m) for m in legal)}\n")
