"""The UCI engine's own opening book (OwnBook + BookFile, off by default), through a real UCI client."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import chess
import chess.engine

from test_bot_features import tiny_book

GAMEGPT = [sys.executable, "-m", "gamegpt.cli", "uci"]


def test_engine_plays_its_book_only_when_asked(untrained_chess_model: Path, tmp_path: Path) -> None:
    book = tiny_book(tmp_path / "tiny.bin")  # 1. g4 (10) or 1. b3 (1); ...h5 against every first move
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    engine = chess.engine.SimpleEngine.popen_uci([*GAMEGPT, "--model", str(untrained_chess_model)], env=env, timeout=60)
    try:
        assert {"OwnBook", "BookFile"} <= set(engine.options)
        limit = chess.engine.Limit(time=2.0)
        firsts = {engine.play(chess.Board(), limit, options={"Seed": seed}).move for seed in range(12)}
        assert not firsts <= {chess.Move.from_uci("g2g4"), chess.Move.from_uci("b2b3")}  # off: the model plays
        engine.configure({"OwnBook": True, "BookFile": str(book)})
        booked = {engine.play(chess.Board(), limit, options={"Seed": seed}).move for seed in range(12)}
        assert booked <= {chess.Move.from_uci("g2g4"), chess.Move.from_uci("b2b3")} and chess.Move.from_uci("g2g4") in booked
        after_e4 = chess.Board()
        after_e4.push_uci("e2e4")
        assert engine.play(after_e4, limit).move == chess.Move.from_uci("h7h5")
        out_of_book = chess.Board()
        for uci in ("e2e4", "e7e5"):
            out_of_book.push_uci(uci)
        assert engine.play(out_of_book, limit).move in out_of_book.legal_moves  # not in the book: the model
        (tmp_path / "broken.bin").write_bytes(b"not a book")
        engine.configure({"BookFile": str(tmp_path / "broken.bin")})
        result = engine.play(chess.Board(), limit, info=chess.engine.INFO_ALL)
        assert result.move in chess.Board().legal_moves  # an unreadable book: still a legal move
    finally:
        engine.quit()
