"""A lean UCI engine client over a raw pipe, and `UciPlayer`, a chess player backed by any UCI engine.

`UciEngineProcess` speaks just enough UCI for self-play and evaluation: the `uci`/`uciok` handshake,
`setoption`, `isready`/`readyok`, `ucinewgame`, `position`, `go` ... `bestmove`, `quit`. Every read has
a deadline (a `selectors` wait on the engine's stdout, with our own line buffer), so an engine that hangs,
dies or talks nonsense gives an `EngineError` with one clear line, never a hang or a traceback. It is
2-3x faster than python-chess's `SimpleEngine` for self-play, which pays for a thread and asyncio per
command.

The engine runs in its own session, so Ctrl-C in a terminal reaches only us (we then close it), and it
reads end-of-file on its stdin when we die, even by SIGKILL: UCI engines (Stockfish included) quit then.
POSIX only (selectors on pipes).
"""

from __future__ import annotations

import os
import selectors
import shlex
import shutil
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import chess

from gamegpt.errors import EngineError, EngineSetupError, PlayerSpecError
from gamegpt.games.base import Game, InvalidMove
from gamegpt.games.chess import ChessGame
from gamegpt.players.base import Player
from gamegpt.players.limits import SearchLimits

__all__ = ["BestMove", "EngineError", "UciEngineProcess", "UciPlayer", "find_stockfish"]

HANDSHAKE_TIMEOUT = 10.0  # seconds for `uciok`; GUIs give engines about as long
READY_TIMEOUT = 30.0  # seconds for `readyok` (an engine may load its network here)
MAX_LINE_BYTES = 1 << 20  # a longer "line" is not UCI: the engine is broken
DEBIAN_STOCKFISH = "/usr/games/stockfish"
DEFAULT_NODES = 1000
"""The search limit of a UCI player whose spec states none."""
STOCKFISH_ENV = "GAMEGPT_STOCKFISH"


@dataclass(frozen=True)
class BestMove:
    """An engine's answer to `go`: the move text as sent (`e2e4`, `e7e8q`, or `(none)` when the engine has
    no move), the move it would ponder on, and the `info` line that came last before it (or "")."""

    text: str
    ponder: str | None = None
    info: str = ""

    def move(self) -> chess.Move | None:
        """The move as a `chess.Move`, or None when the text is not a UCI move (legality is not checked)."""
        try:
            return chess.Move.from_uci(self.text)
        except ValueError:
            return None


@dataclass
class UciOption:
    """One `option name ... type ...` line of the handshake."""

    name: str
    type: str
    default: str | None = None
    min: int | None = None
    max: int | None = None
    choices: list[str] = field(default_factory=list)


def _parse_option(line: str) -> UciOption | None:
    """Parse `option name <name> type <t> [default <d>] [min <m>] [max <M>] [var <v>]...`; None if malformed."""
    tokens = line.split()
    if len(tokens) < 5 or tokens[1] != "name" or "type" not in tokens[2:]:
        return None
    type_at = tokens.index("type", 2)
    option = UciOption(name=" ".join(tokens[2:type_at]), type=tokens[type_at + 1] if type_at + 1 < len(tokens) else "")
    keys = ("default", "min", "max", "var")
    key: str | None = None
    values: list[str] = []

    def flush() -> None:
        if key == "default":
            option.default = " ".join(values)
        elif key in ("min", "max") and len(values) == 1 and values[0].lstrip("-").isdigit():
            setattr(option, key, int(values[0]))
        elif key == "var":
            option.choices.append(" ".join(values))

    for token in tokens[type_at + 2:]:
        if token in keys:
            flush()
            key, values = token, []
        else:
            values.append(token)
    flush()
    return option if option.name else None


class UciEngineProcess:
    """One running UCI engine process. Starts it and does the handshake in the constructor.

    `command` is an argument list or a shell-like string (split with `shlex`). Raises `EngineSetupError` when
    the program is missing, exits, or does not answer `uciok` within `handshake_timeout` seconds. Use as a
    context manager or call `close()`; `close()` is safe to call twice and kills an engine that won't quit.
    """

    def __init__(self, command: Sequence[str] | str, *, handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.command:
            raise EngineSetupError("empty engine command")
        self.label = Path(self.command[0]).name
        self.id_name: str | None = None
        self.id_author: str | None = None
        self.options: dict[str, UciOption] = {}
        self._buffer = b""
        self._closed = False
        self._recent: deque[str] = deque(maxlen=5)
        try:
            self._process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                bufsize=0, start_new_session=True,
            )
        except FileNotFoundError:
            raise EngineSetupError(f"engine not found: {self.command[0]}") from None
        except PermissionError:
            raise EngineSetupError(f"engine is not executable: {self.command[0]}") from None
        except OSError as exc:
            raise EngineSetupError(f"cannot start engine {self.command[0]}: {exc.strerror or exc}") from None
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin, self._stdout_fd = self._process.stdin, self._process.stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout_fd, selectors.EVENT_READ)
        try:
            self._handshake(handshake_timeout)
        except EngineError as exc:
            self.close()
            raise EngineSetupError(f"{exc} (is {self.command[0]} a UCI engine?)") from None
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ raw line I/O
    def send(self, line: str) -> None:
        """Send one command line (a newline is added). Raises EngineError if the engine has gone."""
        if "\n" in line or "\r" in line:
            raise ValueError(f"a UCI command is one line: {line!r}")
        try:
            self._stdin.write((line + "\n").encode())
        except (BrokenPipeError, ConnectionResetError, ValueError, OSError):
            raise self._died(f"while sending {line.split(' ', 1)[0]!r}") from None

    def readline(self, deadline: float, waiting_for: str) -> str:
        """The next line of output (without its newline), stripped. Raises EngineError once `deadline`
        (a `time.monotonic()` value) passes or the engine closes its output; `waiting_for` names what we
        wait for in that message."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                raw, self._buffer = self._buffer[:end], self._buffer[end + 1:]
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    self._recent.append(line)
                return line
            if len(self._buffer) > MAX_LINE_BYTES:
                self.close()
                raise EngineError(f"engine {self.label} sent a line longer than {MAX_LINE_BYTES} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                self.close()
                raise EngineError(f"engine {self.label} did not answer {waiting_for} in time (killed it)")
            try:
                chunk = os.read(self._stdout_fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise self._died(f"while we waited for {waiting_for}")
            self._buffer += chunk

    def _read_until(self, prefix: str, timeout: float, waiting_for: str) -> tuple[str, list[str]]:
        """Lines up to the first that starts with `prefix` (as a word): (that line, the lines before it)."""
        deadline = time.monotonic() + timeout
        before: list[str] = []
        while True:
            line = self.readline(deadline, waiting_for)
            if line == prefix or line.startswith(prefix + " "):
                return line, before
            before.append(line)
            if len(before) > 100_000:  # bounded even for an engine that floods us within the deadline
                self.close()
                raise EngineError(f"engine {self.label} sent over 100000 lines without {waiting_for}")

    def _died(self, when: str) -> EngineError:
        code = self._process.poll()
        if code is None:
            try:
                code = self._process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                code = None
        self.close()
        status = "closed its output" if code is None else f"exited with code {code}"
        last = f"; last output: {self._recent[-1]!r}" if self._recent else ""
        return EngineError(f"engine {self.label} {status} {when}{last}")

    # ------------------------------------------------------------------ UCI commands
    def _handshake(self, timeout: float) -> None:
        self.send("uci")
        _, lines = self._read_until("uciok", timeout, "'uci' with 'uciok'")
        for line in lines:
            if line.startswith("id name "):
                self.id_name = line[len("id name "):].strip()
            elif line.startswith("id author "):
                self.id_author = line[len("id author "):].strip()
            elif line.startswith("option "):
                option = _parse_option(line)
                if option is not None:
                    self.options[option.name.lower()] = option
        if self.id_name:
            self.label = self.id_name

    def set_option(self, name: str, value: Any) -> None:
        """`setoption name <name> value <value>` (booleans as true/false). Raises EngineError for an option
        the engine did not announce, or a spin value outside the announced range (engines ignore those
        silently, which would make a setting lie)."""
        option = self.options.get(name.lower())
        if option is None:
            known = ", ".join(sorted(o.name for o in self.options.values())) or "none"
            raise EngineSetupError(f"engine {self.label} has no option {name!r} (it has: {known})")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if option.type == "spin":
            try:
                number = int(text)
            except ValueError:
                raise EngineSetupError(f"option {option.name!r} of {self.label} takes an integer, got {text!r}") from None
            low = option.min if option.min is not None else number
            high = option.max if option.max is not None else number
            if not low <= number <= high:
                raise EngineSetupError(f"option {option.name!r} of {self.label} must be in {low}..{high}, got {number}")
        if option.type == "button":
            self.send(f"setoption name {option.name}")
        else:
            self.send(f"setoption name {option.name} value {text}")

    def is_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """`isready`, then wait for `readyok`."""
        self.send("isready")
        self._read_until("readyok", timeout, "'isready' with 'readyok'")

    def new_game(self, timeout: float = READY_TIMEOUT) -> None:
        """`ucinewgame` (clears the engine's hash and histories), then `isready`/`readyok`."""
        self.send("ucinewgame")
        self.is_ready(timeout)

    def position(self, fen: str | None = None, moves: Sequence[str] = ()) -> None:
        """`position startpos|fen <fen> [moves ...]`. The FEN is checked with python-chess first (Stockfish
        crashes on a malformed one) and sent in its normal form; raises ValueError when it is not valid."""
        if fen is not None:
            fen = normalize_fen(fen)
        self.send_position(fen, " ".join(moves))

    def send_position(self, fen: str | None, moves_text: str) -> None:
        """`position` without checks: `fen` must come from python-chess (or be None for the start position)
        and `moves_text` be UCI moves joined by spaces. The fast path for players."""
        head = "position startpos" if fen is None else f"position fen {fen}"
        self.send(f"{head} moves {moves_text}" if moves_text else head)

    def go(self, limits: SearchLimits, *, white_to_move: bool = True, timeout: float | None = None) -> BestMove:
        """`go` with `limits` (the clock read for the side to move) and wait for `bestmove`. Without any
        limit the engine would search forever, so one is required (ValueError). `timeout` (seconds) defaults
        to the longest the limits allow plus 10 s, or 60 s for node/depth limits; past it the engine is
        killed and EngineError raised."""
        return self.go_with_output(limits, white_to_move=white_to_move, timeout=timeout)[0]

    def go_with_output(self, limits: SearchLimits, *, white_to_move: bool = True,
                       timeout: float | None = None) -> tuple[BestMove, list[str]]:
        """`go` as above, and every line the engine sent before `bestmove` (its `info` lines: MultiPV scores)."""
        if not limits.has_fixed_limit and limits.time_ms is None:
            raise ValueError("go needs a limit: nodes, depth, movetime or a clock")
        if timeout is None:
            timeout = default_go_timeout(limits)
        command = "go " + " ".join(limits.go_words(white_to_move=white_to_move))
        self.send(command)
        line, before = self._read_until("bestmove", timeout, f"{command!r} with 'bestmove'")
        return parse_bestmove(line, before[-1] if before else ""), before

    def close(self, timeout: float = 1.0) -> None:
        """Send `quit`, wait up to `timeout` seconds, then kill the engine. Safe to call again."""
        process = getattr(self, "_process", None)
        self._closed = True
        if process is None:
            return
        if process.poll() is None:
            try:
                self._stdin.write(b"quit\n")
            except (OSError, ValueError):
                pass
        try:
            self._stdin.close()  # end-of-file: engines that ignore quit (or never read it) exit on this
        except OSError:
            pass
        if process.poll() is None:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            try:
                process.stdout.close()
            except OSError:
                pass
        try:
            self._selector.close()
        except (OSError, ValueError):
            pass

    @property
    def pid(self) -> int:
        """The engine's process id."""
        return self._process.pid

    @property
    def closed(self) -> bool:
        """Whether `close()` ran (it runs too when the engine died or timed out): a new engine is needed."""
        return self._closed

    @property
    def alive(self) -> bool:
        """Whether the engine process is still running (a system call: not for every move)."""
        return not self._closed and self._process.poll() is None

    def __enter__(self) -> "UciEngineProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_process", None) is not None and self._process.poll() is None:
                self._process.kill()
                self._process.wait()
        except Exception:  # interpreter shutdown: nothing sensible to do
            pass


def default_go_timeout(limits: SearchLimits) -> float:
    """Seconds to wait for `bestmove`: the longest the time limits allow plus 10 s; 60 s without one."""
    times = (limits.movetime, limits.time_ms, limits.opponent_time_ms)
    longest = max((t for t in times if t is not None), default=None)
    if longest is None:
        return 60.0
    return longest / 1000 + max(limits.increment_ms, limits.opponent_increment_ms) / 1000 + 10.0


def parse_bestmove(line: str, info: str = "") -> BestMove:
    """Parse `bestmove <move> [ponder <move>]`; a missing move reads as `(none)`."""
    tokens = line.split()
    text = tokens[1] if len(tokens) > 1 else "(none)"
    ponder = tokens[3] if len(tokens) > 3 and tokens[2] == "ponder" else None
    return BestMove(text, ponder, info)


def normalize_fen(fen: str) -> str:
    """The FEN as python-chess writes it; ValueError when it is malformed or not a legal position."""
    try:
        board = chess.Board(fen.strip())
    except ValueError as exc:
        raise ValueError(f"bad FEN {fen!r}: {exc}") from None
    if not board.is_valid():
        raise ValueError(f"bad FEN {fen!r}: {board.status()!r}")
    return board.fen()


def find_stockfish(path: str | None = None) -> str:
    """The Stockfish executable to run: `path` if given (a file, or a name on PATH), else the one the
    environment variable GAMEGPT_STOCKFISH names (how `--stockfish` reaches worker processes), else
    `stockfish` on PATH, else Debian's /usr/games/stockfish. Raises EngineSetupError (a UserError) naming the
    apt package when there is none."""
    path = path or os.environ.get(STOCKFISH_ENV) or None
    if path:
        candidate = Path(path).expanduser()
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                raise EngineSetupError(f"Stockfish at {path} is not executable")
            return str(candidate)
        found = shutil.which(path)
        if found:
            return found
        raise EngineSetupError(f"Stockfish not found at {path}")
    found = shutil.which("stockfish")
    if found:
        return found
    if os.access(DEBIAN_STOCKFISH, os.X_OK):
        return DEBIAN_STOCKFISH
    raise EngineSetupError("Stockfish not found on PATH or at /usr/games/stockfish: install it "
                      "(apt-get install stockfish) or give its path")


class UciPlayer(Player):
    """A chess player backed by one UCI engine process, started at the first game and reused.

    `options` are sent with `setoption` once the engine is up; `limits` are the `go` limits of every move
    (nodes, depth or movetime; default `nodes=1000`). `reset` sends `ucinewgame`. A `bestmove` that is not a
    legal move here (or `(none)`) is returned as an `InvalidMove`, which the arena scores as a loss. Only
    plays `ChessGame`s. Deterministic only for node/depth limits with one search thread.

    Under a clock (`set_clock`, from a clocked arena) each `go` sends the clock (`wtime btime winc binc`)
    plus only the limits the caller stated (`stated_limits`), not the default `nodes` limit.
    """

    name = "uci"

    def __init__(self, command: Sequence[str] | str, *, options: dict[str, Any] | None = None,
                 limits: SearchLimits | None = None, timeout: float | None = None) -> None:
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        self.engine_options = dict(options or {})
        self.stated_limits = (limits or SearchLimits()).fixed
        """The limits the caller gave (possibly none); `limits` adds the default when there are none."""
        self.limits = self.stated_limits if limits is not None else SearchLimits(nodes=DEFAULT_NODES)
        if not self.limits.has_fixed_limit:
            raise PlayerSpecError(f"player {self.name!r} needs a search limit: nodes, depth or movetime")
        self.timeout = timeout
        self.engine: UciEngineProcess | None = None
        self._clock: SearchLimits | None = None
        self._start_fen: str | None = None
        self._start_sent: str | None = None  # the start FEN as python-chess writes it
        self._sent_moves: list[chess.Move] = []
        self._sent_text: list[str] = []

    def start(self) -> UciEngineProcess:
        """The engine, started (with its options set) if it is not running."""
        if self.engine is None or self.engine.closed:
            engine = UciEngineProcess(self.command)
            try:
                for key, value in self.engine_options.items():
                    engine.set_option(key, value)
                engine.is_ready()
            except BaseException:
                engine.close()
                raise
            self.engine = engine
        return self.engine

    def reset(self, seed: int) -> None:
        if self.engine is not None and not self.engine.alive:  # it died between games: start a fresh one
            self.engine.close()
        self.start().new_game()
        self._sent_moves, self._sent_text = [], []
        self._clock = None

    def set_clock(self, clock: SearchLimits) -> None:
        self._clock = clock

    def active_limits(self) -> SearchLimits:
        """The `go` limits besides the clock: the stated ones under a clock, else `limits`."""
        return self.stated_limits if self._clock is not None else self.limits

    def choose(self, game: Game[Any]) -> Any:
        if not isinstance(game, ChessGame):
            raise TypeError(f"{self.name} plays chess, not {game.name}")
        engine = self.start()
        moves_text = self._moves_text(game)
        engine.send_position(self._start_sent, moves_text)
        limits = self.limits if self._clock is None else self.stated_limits.with_clock(self._clock)
        answer = engine.go(limits, white_to_move=game.board.turn == chess.WHITE, timeout=self.timeout)
        move = answer.move()
        if move is None or not game.board.is_legal(move):
            return InvalidMove(answer.text)
        return move

    def _moves_text(self, game: ChessGame) -> str:
        """The game's moves in UCI, joined; converts only the moves added since the last call."""
        stack = game.board.move_stack
        known = len(self._sent_moves)
        if game.start != self._start_fen or known > len(stack) or stack[:known] != self._sent_moves:
            self._start_fen, self._sent_moves, self._sent_text, known = game.start, [], [], 0
            self._start_sent = None if game.start is None else normalize_fen(game.start)
        for move in stack[known:]:
            self._sent_moves.append(move)
            self._sent_text.append(move.uci())
        return " ".join(self._sent_text)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {"name": self.name, **self.active_limits().to_dict()}
        if self.engine_options:
            description["options"] = dict(self.engine_options)
        if self.engine is not None and self.engine.id_name:
            description["engine"] = self.engine.id_name
        return description
