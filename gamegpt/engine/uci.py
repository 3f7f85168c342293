"""`gamegpt uci`: ChessGPT behind the UCI protocol, for chess GUIs and tournament managers.

Threads: the caller's thread reads commands (`UciServer.run`), so `isready`, `stop` and `quit` are
answered while a search runs; a search thread waits for the move, the clock, `stop` or `ponderhit` and
writes exactly one `bestmove` per `go`; the model decodes in a worker thread, under a lock, so a search
that runs out of time answers at once with an emergency move while the decoding finishes in the
background (its KV cache is then warm for the next move).

What the engine promises a GUI:
  * `uci` is answered at once; the model loads at `isready` (or at the first `go`).
  * every `go` gets one legal `bestmove` (`(none)` only when there is no legal move), preceded by
    `info depth 1 seldepth 1 ... score ... pv <bestmove>`; after `go infinite`/`go ponder` it is held until
    `stop`/`ponderhit`.
  * the score is `evaluation.score_after`: the static material + piece-square evaluation of the position
    after the move (mate 1 when the move mates), not a search result; it is never a constant `cp 0`.
  * a move the model cannot make legally (policies `raw`/`retry`), a model that fails to load, or a clock
    that runs out before the model answers: a legal move anyway (`Fallback`: masked decoding or a random
    legal move; random when out of time), with an `info string` saying why (a model that fails to load is
    also reported once on stderr).
  * bad input (unknown commands, broken FEN, illegal moves in `position`, bad option values) gets an
    `info string` and changes nothing else; a broken FEN resets to the start position.
  * the move depends only on the options and the position (game history included): the sampling
    generator is seeded from `Seed` and the position, so a replayed game gets the same moves.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TextIO

import chess

from gamegpt import __version__
from gamegpt.engine.decide import book_move, clock_budget, model_move, position_seed, random_move
from gamegpt.engine.evaluation import score_after
from gamegpt.engine.settings import DEFAULTS, FALLBACKS, POLICIES, DecodingSettings, convert_setting
from gamegpt.errors import ConfigError
from gamegpt.games.chess import ChessGame
from gamegpt.players.limits import SearchLimits

if TYPE_CHECKING:
    from gamegpt.engine.model_player import ModelPlayer

ENGINE_NAME = f"ChessGPT (gamegpt {__version__})"
AUTHOR = "the gamegpt developers"
MIN_THINK_SECONDS = 0.005


ENGINE_OPTIONS = ("model", "ponder", "own_book", "book_file")
"""The options that are not decoding settings."""


@dataclass
class Options:
    """The engine's UCI options: the model, pondering, an opening book (`OwnBook` + `BookFile`, a Polyglot
    .bin; off by default: its moves are the book's, not the model's), and the decoding settings
    (`gamegpt.engine.settings`: their defaults and their one check)."""

    model: str = "chessgpt"
    ponder: bool = False
    own_book: bool = False
    book_file: str = ""
    decoding: DecodingSettings = DEFAULTS

    def value(self, attribute: str) -> Any:
        """The value of the option stored at `attribute` (see UCI_OPTIONS)."""
        return getattr(self if attribute in ENGINE_OPTIONS else self.decoding, attribute)


def _combo(default: str, choices: tuple[str, ...]) -> str:
    return f"type combo default {default} " + " ".join(f"var {choice}" for choice in choices)


UCI_OPTIONS = (
    # (name, uci declaration, attribute, parser)
    ("Model", "type string default chessgpt", "model", str),
    ("Policy", _combo(DEFAULTS.policy, POLICIES), "policy", str),
    ("Fallback", _combo(DEFAULTS.fallback, FALLBACKS), "fallback", str),
    ("Temperature", f"type string default {DEFAULTS.temperature:g}", "temperature", float),
    ("TopK", f"type spin default {DEFAULTS.top_k} min 0 max 4096", "top_k", int),
    ("Seed", f"type spin default {DEFAULTS.seed} min 0 max 2147483647", "seed", int),
    ("Threads", f"type spin default {DEFAULTS.threads} min 1 max {max(1, os.cpu_count() or 1)}", "threads", int),
    ("Move Overhead", f"type spin default {DEFAULTS.move_overhead_ms} min 0 max 5000", "move_overhead_ms", int),
    ("AvoidRepetition", "type check default false", "avoid_repetition", lambda v: convert_setting("avoid_repetition", v)),
    ("Ponder", "type check default false", "ponder", lambda v: v.lower() == "true"),
    ("OwnBook", "type check default false", "own_book", lambda v: v.lower() == "true"),
    ("BookFile", "type string default <empty>", "book_file", lambda v: "" if v == "<empty>" else v),
)


def think_time(limits: SearchLimits, overhead_ms: int) -> float | None:
    """Seconds this move may take before an emergency move is sent; None: no limit (`go infinite`, `go
    depth` alone). The model needs far less than this on a normal clock: the budget only bounds the
    worst case (a first load, a cache rebuild on a slow machine)."""
    overhead = overhead_ms / 1000
    if limits.movetime is not None:
        return max(MIN_THINK_SECONDS, limits.movetime / 1000 - overhead)
    if limits.time_ms is None:
        return None
    return max(MIN_THINK_SECONDS, clock_budget(limits.time_ms / 1000, limits.increment_ms / 1000, overhead,
                                               limits.movestogo))


class _Search:
    """One `go`: the decoding (in a worker thread) and the wait for it, the clock, `stop` or `ponderhit`."""

    def __init__(self, engine: "UciServer", game: ChessGame, limits: SearchLimits) -> None:
        self.engine = engine
        self.game = game
        self.limits = limits
        self.started = time.monotonic()
        self.hold = limits.infinite or limits.ponder
        self.budget = None if self.hold else think_time(limits, engine.options.decoding.move_overhead_ms)
        self.condition = threading.Condition()
        self.result: tuple[chess.Move | None, list[str], int] | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="uci-search", daemon=True)

    def start(self) -> None:
        threading.Thread(target=self._decode, name="uci-decode", daemon=True).start()
        self.thread.start()

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify_all()

    def ponderhit(self) -> None:
        with self.condition:
            if self.hold and not self.limits.infinite:
                self.hold = False
                self.limits = dataclasses.replace(self.limits, ponder=False)
                self.started = time.monotonic()
                self.budget = think_time(self.limits, self.engine.options.decoding.move_overhead_ms)
            self.condition.notify_all()

    def _decode(self) -> None:
        result = self.engine.decide(self.game, self.limits.searchmoves)
        with self.condition:
            self.result = result
            self.condition.notify_all()

    def _finished(self) -> bool:
        return self.stopped or (self.result is not None and not self.hold)

    def _run(self) -> None:
        with self.condition:
            while not self._finished():
                timeout = None
                if self.budget is not None and not self.hold:
                    timeout = self.started + self.budget - time.monotonic()
                    if timeout <= 0:
                        break
                self.condition.wait(timeout)
            result = self.result
        notes: list[str] = []
        if result is None:
            move = self.engine.emergency_move(self.game)
            notes.append("no model move in time: playing a random legal move")
            forward_passes = 0
        else:
            move, notes, forward_passes = result
        self.engine.report(self.game, move, notes, forward_passes, time.monotonic() - self.started)

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)


class UciServer:
    """The UCI front end of a ChessGPT model. `run(lines)` processes commands until `quit` or end of input;
    output goes to `out`, one flushed line at a time."""

    def __init__(self, out: TextIO | None = None, options: Options | None = None) -> None:
        self.out = out or sys.stdout
        self.options = options or Options()
        self._write_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._player: ModelPlayer | None = None
        self._load_error: str | None = None
        self._search: _Search | None = None
        self.game = ChessGame()

    # --- output --------------------------------------------------------------------------------------

    def send(self, line: str) -> None:
        """Write one line and flush it (a GUI reads line by line from a pipe)."""
        with self._write_lock:
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):
                pass  # the GUI is gone; nothing left to tell it

    def info_string(self, text: str) -> None:
        self.send("info string " + " ".join(text.split()))

    # --- the loop ------------------------------------------------------------------------------------

    def run(self, lines: Iterable[str]) -> None:
        """Handle commands until `quit` or the end of `lines`; a running search is stopped at the end."""
        try:
            for line in lines:
                if not self.handle(line):
                    break
        finally:
            self._finish_search(stop=True)

    def handle(self, line: str) -> bool:
        """Handle one command line; False after `quit`. Never raises on bad input."""
        words = line.strip().split()
        if not words:
            return True
        command, args = words[0], words[1:]
        try:
            if command == "quit":
                return False
            handler = self._handlers().get(command)
            if handler is None:
                self.info_string(f"unknown command: {' '.join(words)[:200]}")
            else:
                handler(args)
        except Exception as exc:  # a bug must not end a GUI session: report and go on
            self.info_string(f"error handling {command!r}: {type(exc).__name__}: {exc}")
        return True

    def _handlers(self) -> dict[str, Callable[[list[str]], None]]:
        return {
            "uci": self._uci, "isready": self._isready, "setoption": self._setoption,
            "ucinewgame": self._ucinewgame, "position": self._position, "go": self._go, "stop": self._stop,
            "ponderhit": self._ponderhit, "debug": lambda args: None, "register": lambda args: None,
        }

    # --- commands ------------------------------------------------------------------------------------

    def _uci(self, args: list[str]) -> None:
        self.send(f"id name {ENGINE_NAME}")
        self.send(f"id author {AUTHOR}")
        for name, declaration, _, _ in UCI_OPTIONS:
            self.send(f"option name {name} {declaration}")
        self.send("uciok")

    def _isready(self, args: list[str]) -> None:
        if self._search is None and self._player is None:  # load once; while thinking, answer at once
            self.ensure_model()
        self.send("readyok")

    def _setoption(self, args: list[str]) -> None:
        text = " ".join(args)
        if not text.lower().startswith("name "):
            self.info_string(f"setoption needs 'name': setoption {text}")
            return
        name, _, value = text[5:].partition(" value ")
        name, value = name.strip(), value.strip()
        for option_name, _, attribute, parse in UCI_OPTIONS:
            if option_name.lower() == name.lower():
                break
        else:
            self.info_string(f"unknown option: {name}")
            return
        try:
            parsed = parse(value)
            if attribute == "model" and not parsed:
                raise ValueError("empty model name")
            decoding = self.options.decoding
            if attribute not in ENGINE_OPTIONS:
                decoding = decoding.replace(**{attribute: parsed})  # its one check
        except (ValueError, TypeError, ConfigError) as exc:
            self.info_string(f"bad value for {option_name}: {value!r} ({exc}); keeping {self.options.value(attribute)}")
            return
        self._finish_search(stop=True)
        if attribute in ENGINE_OPTIONS:
            setattr(self.options, attribute, parsed)
        self.options.decoding = decoding
        if attribute in ("model", "policy", "temperature", "top_k", "avoid_repetition"):
            self._player, self._load_error = None, None
        if attribute == "threads" and self._player is not None:
            import torch

            torch.set_num_threads(parsed)

    def _ucinewgame(self, args: list[str]) -> None:
        self._finish_search(stop=True)
        self.game = ChessGame()

    def _position(self, args: list[str]) -> None:
        self._finish_search(stop=True)
        moves_at = args.index("moves") if "moves" in args else len(args)
        head, moves = args[:moves_at], args[moves_at + 1:]
        if head[:1] == ["startpos"]:
            game = ChessGame()
        elif head[:1] == ["fen"] and len(head) > 1:
            fen = " ".join(head[1:])
            try:
                game = ChessGame(fen)  # a FEN of the standard start counts as startpos
            except ValueError as exc:
                self.info_string(f"broken FEN ({exc}); using the start position")
                self.game = ChessGame()
                return
        else:
            self.info_string(f"position needs 'startpos' or 'fen <FEN>': position {' '.join(args)[:200]}")
            return
        for ply, text in enumerate(moves, start=1):
            try:
                move = game.board.parse_uci(text)
                game.push(move)
            except ValueError:
                self.info_string(f"illegal move {text} at move {ply} of position: position kept up to the move before")
                break
        self.game = game

    def _go(self, args: list[str]) -> None:
        self._finish_search(stop=True)
        limits = SearchLimits.from_go(args, white_to_move=self.game.board.turn == chess.WHITE)
        self._search = _Search(self, self.game.copy(), limits)
        self._search.start()

    def _stop(self, args: list[str]) -> None:
        self._finish_search(stop=True)

    def _ponderhit(self, args: list[str]) -> None:
        if self._search is not None:
            self._search.ponderhit()

    def _finish_search(self, stop: bool) -> None:
        """Wait for the running search (its bestmove written); with `stop`, end it first."""
        search, self._search = self._search, None
        if search is None:
            return
        if stop:
            search.stop()
        search.join()

    # --- the model -------------------------------------------------------------------------------------

    def ensure_model(self) -> ModelPlayer | None:
        """The model player, loaded on first use; None (with an info string, once) if it cannot load."""
        with self._model_lock:
            return self._ensure_model_locked()

    def _ensure_model_locked(self) -> ModelPlayer | None:
        if self._player is None and self._load_error is None:
            o = self.options
            try:
                import torch

                from gamegpt.engine.model_player import load_model_player  # torch loads here, not at `uci`

                torch.set_num_threads(o.decoding.threads)
                self._player = load_model_player(o.model, "chess", settings=o.decoding)
            except Exception as exc:  # UserError for bad paths/files; anything else is reported the same way
                self._load_error = f"cannot load model {o.model!r}: {exc}"
                self.info_string(self._load_error + "; playing random legal moves")
                # GUIs often hide info strings: say it where the person who started the engine looks too
                print(f"gamegpt uci: {self._load_error}; playing random legal moves", file=sys.stderr,
                      flush=True)
        return self._player

    def decide(self, game: ChessGame, searchmoves: Sequence[str]) -> tuple[chess.Move | None, list[str], int]:
        """The move for `game` (None if there is none), notes for `info string`, and forward passes used."""
        board = game.board
        legal = list(board.legal_moves)
        wanted = set(searchmoves)
        among = [m for m in legal if m.uci() in wanted] or legal
        if not legal:
            return None, [], 0
        notes: list[str] = []
        seed = self._position_seed(game)
        if self.options.own_book and self.options.book_file:
            try:
                from_book = book_move(self.options.book_file, board, seed)
            except (OSError, ValueError) as exc:
                notes.append(f"opening book {self.options.book_file} unreadable ({exc}): the model plays")
            else:
                if from_book is not None and from_book in among:
                    return from_book, ["book move"], 0
        with self._model_lock:
            player = self._ensure_model_locked()
            if player is None:
                return random_move(seed, among), ["no model: random legal move"], 0
            if game.outcome() is not None:
                return random_move(seed, among), [f"the game is over ({game.outcome().termination}): a legal move anyway"], 0
            if game.start is not None and not player.codec.spec().get("start_position"):
                notes.append(f"the position does not start from the standard start and model {self.options.model} "
                             "has no start-position encoding: it plays off its training distribution")
            passes_before = player.forward_passes
            move, more = model_move(player, game, self._position_seed(game), self.options.decoding.fallback, among)
            return move, notes + more, player.forward_passes - passes_before

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a decoding still running in the background; True if none is."""
        if self._model_lock.acquire(timeout=timeout):
            self._model_lock.release()
            return True
        return False

    def emergency_move(self, game: ChessGame) -> chess.Move | None:
        legal = list(game.board.legal_moves)
        return random_move(self._position_seed(game), legal) if legal else None

    def _position_seed(self, game: ChessGame) -> int:
        return position_seed(self.options.decoding.seed, game)

    def report(self, game: ChessGame, move: chess.Move | None, notes: list[str], forward_passes: int,
               seconds: float) -> None:
        """Write the info lines and the one bestmove of a search."""
        for note in notes:
            self.info_string(note)
        if move is None:
            self.send("info depth 0 score mate 0" if game.board.is_checkmate() else "info depth 0 score cp 0")
            self.send("bestmove (none)")
            return
        kind, value = score_after(game.board, move)
        millis = max(1, round(seconds * 1000))
        self.send(f"info depth 1 seldepth 1 multipv 1 score {kind} {value} nodes {forward_passes} "
                  f"nps {forward_passes * 1000 // millis} time {millis} pv {move.uci()}")
        self.send(f"bestmove {move.uci()}")


def main(model: str | None = None, lines: Iterable[str] | None = None, out: TextIO | None = None) -> None:
    """Run the engine on stdin/stdout (or the given lines and stream)."""
    options = Options()
    if model:
        options.model = model
    engine = UciServer(out=out, options=options)
    engine.run(lines if lines is not None else iter(sys.stdin.readline, ""))
    if not engine.wait_idle(timeout=5.0):
        # A decoding thread is still inside torch: interpreter shutdown would abort the process under it.
        sys.stdout.flush()
        os._exit(0)
