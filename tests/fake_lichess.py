"""A fake Lichess for the bot's tests: a real HTTP/1.1 server on 127.0.0.1 (ThreadingHTTPServer in a thread,
port 0), serving at `/` the endpoints the bot calls, with Lichess's NDJSON formats.

* Streams (`/api/stream/event`, `/api/bot/game/stream/{id}`) use chunked transfer encoding, one line per
  chunk, with a blank keep-alive line every `keepalive_seconds`. On (re)connection the event stream sends
  the open challenges and a `gameStart` for every running game again, as Lichess does.
* Bodies are read as JSON or as form data (berserk sends JSON; other clients send forms).
* The opponent's side of every game is played by a referee thread: random legal moves that never mate
  (so the bot cannot lose over the board), following a `Script` (resign at a ply, offer draws, ask for
  takebacks, leave the game, never move). Clocks run as on Lichess (from the second ply on; a side that
  misses its first move within `first_move_limit` gets a `noStart`).
* Faults on demand (`Faults`): 429 and 500 answers, slow replies (after the work is done, so a reply
  lost to a timeout leaves the move played), streams dropped (also mid-line) and streams that stall.
* Everything the bot did is recorded: moves (illegal ones apart), chat, declines with reasons, aborts,
  claims, answers to offers, and every request with its time and status.
"""

from __future__ import annotations

import json
import math
import queue
import random
import re
import socket
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import chess

BOT_ID = "gamegptbot"
BOT_NAME = "GamegptBot"
END = object()
VARIANT_NAMES = {"standard": ("Standard", "Std"), "chess960": ("Chess960", "960"),
                 "fromPosition": ("From Position", "FEN"), "crazyhouse": ("Crazyhouse", "ZH")}


@dataclass
class Script:
    """What the fake opponent does in one game (plies count half-moves from the start)."""

    resign_at_ply: int | None = 40
    """Resigns when it is to move with at least this many plies played."""
    draw_offer_plies: tuple[int, ...] = ()
    """Offers a draw with the move that makes the game this many plies long."""
    takeback_plies: tuple[int, ...] = ()
    """Asks to take back its last move when it is to move at this ply."""
    gone_at_ply: int | None = None
    """Leaves the game (stops moving, opponentGone) when it is to move at this ply."""
    claim_seconds: int = 1
    idle: bool = False
    """Never moves."""
    move_delay: float = 0.01
    chat: str = "good luck!"
    accept_draws: bool = False
    """Accepts the bot's draw offers (made with a move: `offeringDraw=true`) at once."""


@dataclass
class Faults:
    """Probabilities of each fault per bot request (429, 500, slow) and per stream line (drop, stall);
    at most `max_each` of each kind."""

    p_429: float = 0.0
    p_500: float = 0.0
    p_slow: float = 0.0
    slow_seconds: float = 1.0
    p_drop: float = 0.0
    p_stall: float = 0.0
    stall_seconds: float = 1.5
    max_each: int = 1000
    seed: int = 0
    rate_limited: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Scripted 429s: a path pattern (regex, matched in full) -> which of its requests (1 = the first)
    are answered 429, whatever the probabilities say."""
    retry_after: dict[str, str] = field(default_factory=dict)
    """A path pattern -> the `Retry-After` header of the 429s its requests get (none if absent)."""


@dataclass
class FakeGame:
    """One game on the fake server and everything that happened in it."""

    id: str
    bot_color: chess.Color
    opponent: dict[str, Any]
    rated: bool
    speed: str
    variant: str
    clock: tuple[int, int] | None
    initial_fen: str
    script: Script
    rng: random.Random
    board: chess.Board = field(init=False)
    status: str = "started"
    winner: str | None = None
    times: dict[chess.Color, float] = field(default_factory=dict)
    turn_started: float = field(default_factory=time.monotonic)
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    draw_offer: chess.Color | None = None
    takeback_offer: chess.Color | None = None
    opponent_due: float = 0.0
    gone_since: float | None = None
    subscribers: list[queue.Queue[Any]] = field(default_factory=list)
    chat: list[tuple[str, str, str]] = field(default_factory=list)
    bot_moves: list[str] = field(default_factory=list)
    illegal_moves: list[str] = field(default_factory=list)
    duplicate_moves: int = 0
    draw_offers: int = 0
    draw_answers: list[bool] = field(default_factory=list)
    unanswered_draw_offers: int = 0
    takeback_asks: list[int] = field(default_factory=list)
    takeback_answers: list[bool] = field(default_factory=list)
    aborted_by_bot: bool = False
    bot_resigned: bool = False
    claims: list[bool] = field(default_factory=list)
    no_start_side: chess.Color | None = None
    ended_at: float | None = None
    bot_move_times: list[float] = field(default_factory=list)
    bot_draw_offers: list[int] = field(default_factory=list)
    """The game's length (plies) after each move the bot offered a draw with."""

    def __post_init__(self) -> None:
        self.board = chess.Board() if self.initial_fen == "startpos" else chess.Board(self.initial_fen)
        initial = self.clock[0] if self.clock else 2147483647
        self.times = {chess.WHITE: float(initial), chess.BLACK: float(initial)}

    @property
    def running(self) -> bool:
        return self.status == "started"

    @property
    def bot_color_name(self) -> str:
        return "white" if self.bot_color == chess.WHITE else "black"

    @property
    def moves(self) -> list[str]:
        return [m.uci() for m in self.board.move_stack]

    @property
    def bot_lost(self) -> bool:
        """The bot lost or abandoned the game (a win for the opponent, or a first move it missed)."""
        opponent = "black" if self.bot_color == chess.WHITE else "white"
        return self.winner == opponent or self.no_start_side == self.bot_color or self.bot_resigned


class FakeLichess:
    """The server. Use as a context manager; `url` is its base URL (`http://127.0.0.1:PORT/`)."""

    def __init__(self, token: str, *, keepalive_seconds: float = 0.15, faults: Faults | None = None,
                 first_move_limit: float = 15.0, resend_games_on_connect: bool = True, seed: int = 0) -> None:
        self.token = token
        self.keepalive_seconds = keepalive_seconds
        self.faults = faults or Faults()
        self.first_move_limit = first_move_limit
        self.resend_games_on_connect = resend_games_on_connect
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rng = random.Random(seed)
        self.fault_rng = random.Random(self.faults.seed)
        self.fault_counts: dict[str, int] = {k: 0 for k in ("429", "500", "slow", "drop", "stall")}
        self.pattern_counts: dict[str, int] = {}
        self.games: dict[str, FakeGame] = {}
        self.challenges: dict[str, dict[str, Any]] = {}
        self.challenge_scripts: dict[str, Script] = {}
        self.declines: dict[str, str] = {}
        self.accepted: list[str] = []
        self.requests: list[tuple[float, str, str, int]] = []
        self.body_kinds: list[str] = []
        self.auth_failures = 0
        self.errors: list[str] = []
        self.event_streams: list[queue.Queue[Any]] = []
        self.event_connections = 0
        self.game_connections: dict[str, int] = {}
        self.max_running = 0
        self.online_bots: dict[str, tuple[int, str, Script]] = {}
        self.outgoing: list[tuple[str, str, dict[str, Any]]] = []
        """The bot's challenges: (challenge id, opponent's username, the request's parameters)."""
        self.cancelled: list[str] = []
        self.closing = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.fake = self  # type: ignore[attr-defined]
        self._threads = [threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                          name="fake-lichess-http", daemon=True),
                         threading.Thread(target=self._referee, name="fake-lichess-referee", daemon=True)]

    # ------------------------------------------------------------------ life cycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> "FakeLichess":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` (checked under the lock at every change, and every 0.1 s) or timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.1))
        return True

    # ------------------------------------------------------------------ what tests create
    def _new_id(self) -> str:
        return "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(8))

    def challenge(self, opponent: str = "Alice", *, bot: bool = False, rated: bool = False,
                  variant: str = "standard", speed: str | None = None, limit: int | None = 60,
                  increment: int = 1, days: int | None = None, color: str = "random",
                  script: Script | None = None) -> str:
        """An incoming challenge to the bot (sent on the event stream); returns its id (the game's id)."""
        with self.lock:
            challenge_id = self._new_id()
            if days is not None:
                control: dict[str, Any] = {"type": "correspondence", "daysPerTurn": days}
                speed = speed or "correspondence"
            elif limit is None:
                control, speed = {"type": "unlimited"}, speed or "correspondence"
            else:
                control = {"type": "clock", "limit": limit, "increment": increment,
                           "show": f"{limit // 60 if limit % 60 == 0 else limit / 60}+{increment}"}
                speed = speed or _speed_of(limit, increment)
            name, short = VARIANT_NAMES.get(variant, (variant, variant))
            self.challenges[challenge_id] = {
                "id": challenge_id, "url": f"{self.url}{challenge_id}", "status": "created",
                "challenger": _user(opponent, bot), "destUser": _user(BOT_NAME, True, BOT_ID),
                "variant": {"key": variant, "name": name, "short": short}, "rated": rated, "speed": speed,
                "timeControl": control, "color": color,
                "finalColor": color if color != "random" else self.rng.choice(["white", "black"]),
                "perf": {"icon": "", "name": speed.title()},
            }
            self.challenge_scripts[challenge_id] = script or Script()
            self._broadcast({"type": "challenge", "challenge": self.challenges[challenge_id]})
            return challenge_id

    def add_online_bot(self, name: str, rating: int, answer: str = "accept", script: Script | None = None) -> None:
        """A bot listed by /api/bot/online, rated `rating` in every speed, that answers the bot's challenges:
        `accept`, `decline:<reason key>`, or `ignore` (never answers)."""
        with self.lock:
            self.online_bots[name.lower()] = (rating, answer, script or Script())

    def say(self, game_id: str, text: str, room: str = "player", username: str | None = None) -> None:
        """A chat line in a game's player room (from the opponent) or spectator room (from a spectator)."""
        with self.lock:
            game = self.games[game_id]
            name = username or (game.opponent["name"] if room == "player" else "Spectator")
            self._push(game, {"type": "chatLine", "room": room, "username": name, "text": text})

    def cancel_challenge(self, challenge_id: str) -> None:
        with self.lock:
            challenge = self.challenges.pop(challenge_id, None)
            if challenge is not None:
                self._broadcast({"type": "challengeCanceled", "challenge": {**challenge, "status": "canceled"}})

    def start_game(self, opponent: str = "Bob", *, bot_color: str = "white", script: Script | None = None,
                   limit: int = 60, increment: int = 1, moves: tuple[str, ...] = (), announce: bool = True,
                   fen: str = "startpos") -> str:
        """A game that starts without a challenge (as from a tournament or a seek); announced on the event
        stream unless `announce` is False (then only /api/account/playing tells the bot). From `fen` if
        given (variant fromPosition)."""
        with self.lock:
            game_id = self._new_id()
            game = self._create_game(game_id, _user(opponent, False), bot_color == "white", False,
                                     _speed_of(limit, increment), "standard" if fen == "startpos" else "fromPosition",
                                     (limit * 1000, increment * 1000), fen, script or Script())
            for uci in moves:
                game.board.push_uci(uci)
            game.turn_started = time.monotonic()
            if announce:
                self._broadcast(self._game_event("gameStart", game))
            return game_id

    def _create_game(self, game_id: str, opponent: dict[str, Any], bot_white: bool, rated: bool, speed: str,
                     variant: str, clock: tuple[int, int] | None, initial_fen: str, script: Script) -> FakeGame:
        game = FakeGame(game_id, chess.WHITE if bot_white else chess.BLACK, opponent, rated, speed, variant,
                        clock, initial_fen, script, random.Random(f"{game_id}"))
        game.opponent_due = time.monotonic() + script.move_delay
        self.games[game_id] = game
        self.max_running = max(self.max_running, sum(g.running for g in self.games.values()))
        return game

    # ------------------------------------------------------------------ JSON shapes
    def _players(self, game: FakeGame) -> tuple[dict[str, Any], dict[str, Any]]:
        bot = {"id": BOT_ID, "name": BOT_NAME, "title": "BOT", "rating": 1500, "provisional": True}
        opponent = {k: v for k, v in game.opponent.items() if k in ("id", "name", "title", "rating")}
        return (bot, opponent) if game.bot_color == chess.WHITE else (opponent, bot)

    def _state(self, game: FakeGame) -> dict[str, Any]:
        increment = game.clock[1] if game.clock else 0
        state: dict[str, Any] = {
            "type": "gameState", "moves": " ".join(game.moves),
            "wtime": int(game.times[chess.WHITE]), "btime": int(game.times[chess.BLACK]),
            "winc": increment, "binc": increment, "status": game.status,
            "wdraw": game.draw_offer == chess.WHITE, "bdraw": game.draw_offer == chess.BLACK,
            "wtakeback": game.takeback_offer == chess.WHITE, "btakeback": game.takeback_offer == chess.BLACK,
        }
        if game.winner:
            state["winner"] = game.winner
        return state

    def _full(self, game: FakeGame) -> dict[str, Any]:
        white, black = self._players(game)
        name, short = VARIANT_NAMES.get(game.variant, (game.variant, game.variant))
        full: dict[str, Any] = {
            "type": "gameFull", "id": game.id, "variant": {"key": game.variant, "name": name, "short": short},
            "speed": game.speed, "perf": {"name": game.speed.title()}, "rated": game.rated,
            "createdAt": game.created_ms, "white": white, "black": black, "initialFen": game.initial_fen,
            "state": self._state(game),
        }
        full["clock"] = {"initial": game.clock[0], "increment": game.clock[1]} if game.clock else None
        if game.clock is None:
            full["daysPerTurn"] = 2
        return full

    def _game_event(self, kind: str, game: FakeGame) -> dict[str, Any]:
        opponent = game.opponent
        info = {
            "gameId": game.id, "fullId": game.id + "abcd", "color": game.bot_color_name, "fen": game.board.fen(),
            "hasMoved": any(True for i, _ in enumerate(game.board.move_stack)
                            if (i % 2 == 0) == (game.bot_color == chess.WHITE)),
            "isMyTurn": game.board.turn == game.bot_color, "lastMove": game.moves[-1] if game.moves else "",
            "opponent": {"id": opponent["id"], "username": opponent["name"], "rating": opponent.get("rating")},
            "perf": game.speed, "rated": game.rated, "secondsLeft": int(game.times[game.bot_color] / 1000),
            "source": "friend", "speed": game.speed,
            "variant": {"key": game.variant, "name": VARIANT_NAMES.get(game.variant, (game.variant,))[0]},
            "compat": {"bot": True, "board": False}, "id": game.id,
        }
        if kind == "gameFinish":
            info["status"] = {"id": 30, "name": game.status}
            if game.winner:
                info["winner"] = game.winner
        return {"type": kind, "game": info}

    # ------------------------------------------------------------------ pushing to streams
    def _broadcast(self, event: dict[str, Any]) -> None:
        for q in self.event_streams:
            q.put(event)
        self.changed.notify_all()

    def _push(self, game: FakeGame, event: dict[str, Any] | None = None) -> None:
        event = event or self._state(game)
        for q in game.subscribers:
            q.put(event)
            if not game.running:
                q.put(END)
        self.changed.notify_all()

    def _end(self, game: FakeGame, status: str, winner: str | None = None) -> None:
        game.status, game.winner = status, winner
        game.draw_offer = game.takeback_offer = None
        game.ended_at = time.monotonic()
        self._push(game)
        self._broadcast(self._game_event("gameFinish", game))

    # ------------------------------------------------------------------ the opponent and the clocks
    def _referee(self) -> None:
        while not self.closing.wait(0.01):
            with self.lock:
                for game in list(self.games.values()):
                    if game.running:
                        self._tick(game)

    def _tick(self, game: FakeGame) -> None:
        now = time.monotonic()
        board, mover = game.board, game.board.turn
        plies = len(board.move_stack)
        if plies < 2 and now - game.turn_started > self.first_move_limit:
            game.no_start_side = mover
            self._end(game, "noStart")
            return
        if game.clock and plies >= 2 and game.times[mover] - (now - game.turn_started) * 1000 <= 0:
            game.times[mover] = 0
            self._end(game, "outoftime", "black" if mover == chess.WHITE else "white")
            return
        if mover == game.bot_color or game.script.idle or game.gone_since is not None:
            return
        script = game.script
        if game.takeback_offer is not None:
            if now - game.turn_started > 3.0:  # no answer: withdrawn
                game.takeback_offer = None
                self._push(game)
            return
        if script.gone_at_ply is not None and plies >= script.gone_at_ply:
            game.gone_since = now
            self._push(game, {"type": "opponentGone", "gone": True, "claimWinInSeconds": script.claim_seconds})
            return
        if script.resign_at_ply is not None and plies >= script.resign_at_ply:
            self._end(game, "resign", game.bot_color_name)
            return
        if plies in script.takeback_plies and plies not in game.takeback_asks and plies >= 2:
            game.takeback_asks.append(plies)
            game.takeback_offer = mover
            self._push(game)
            return
        if now < game.opponent_due:
            return
        moves = list(board.legal_moves)
        gentle = [m for m in moves if not _mates(board, m)]
        move = game.rng.choice(gentle or moves)
        self._apply(game, move)
        if len(board.move_stack) in script.draw_offer_plies and game.running:
            game.draw_offer = mover
            game.draw_offers += 1
        if game.running:
            self._push(game)

    def _apply(self, game: FakeGame, move: chess.Move) -> None:
        """Play `move` for the side to move, with its clock; end the game if the rules end it."""
        now = time.monotonic()
        mover = game.board.turn
        if game.clock and len(game.board.move_stack) >= 2:
            game.times[mover] += game.clock[1] - (now - game.turn_started) * 1000
        game.board.push(move)
        game.turn_started = now
        game.draw_offer = None if game.draw_offer != mover else game.draw_offer
        outcome = game.board.outcome()
        if outcome is not None:
            status = {chess.Termination.CHECKMATE: "mate", chess.Termination.STALEMATE: "stalemate"}.get(
                outcome.termination, "draw")
            winner = None if outcome.winner is None else ("white" if outcome.winner else "black")
            self._end(game, status, winner)

    # ------------------------------------------------------------------ the bot's requests
    def handle(self, handler: "_Handler", method: str) -> None:
        path = urlsplit(handler.path).path
        handler.query = parse_qs(urlsplit(handler.path).query)
        status_box = [200]
        try:
            body = handler.read_body(self)  # read first: a keep-alive connection must not keep it
            if handler.headers.get("Authorization") != f"Bearer {self.token}":
                with self.lock:
                    self.auth_failures += 1
                handler.reply(401, {"error": "No such token"}, status_box)
                return
            fault = self._scripted_fault(path) or self._request_fault(path)
            if fault == "429":
                headers = {"Retry-After": value for pattern, value in self.faults.retry_after.items()
                           if re.fullmatch(pattern, path)}
                handler.reply(429, {"error": "Too many requests. Try again later."}, status_box, headers)
                return
            if fault == "500":
                handler.reply(self.fault_rng.choice([500, 502, 503]), {"error": "Internal server error"}, status_box)
                return
            for pattern, wanted, action in ROUTES:
                match = re.fullmatch(pattern, path)
                if match and wanted == method:
                    action(self, handler, status_box, fault == "slow", *match.groups(), body=body)
                    return
            handler.reply(404, {"error": "Not found"}, status_box)
        finally:
            with self.lock:
                self.requests.append((time.monotonic(), method, path, status_box[0]))
                self.changed.notify_all()

    def _scripted_fault(self, path: str) -> str | None:
        with self.lock:
            for pattern, which in self.faults.rate_limited.items():
                if re.fullmatch(pattern, path):
                    self.pattern_counts[pattern] = count = self.pattern_counts.get(pattern, 0) + 1
                    if count in which:
                        self.fault_counts["429"] += 1
                        return "429"
        return None

    def _request_fault(self, path: str) -> str | None:
        f = self.faults
        with self.lock:
            r = self.fault_rng.random()
            for kind, p in (("429", f.p_429), ("500", f.p_500), ("slow", f.p_slow)):
                if r < p and self.fault_counts[kind] < f.max_each:
                    self.fault_counts[kind] += 1
                    return kind
                r -= p
        return None

    def _line_fault(self) -> str | None:
        f = self.faults
        with self.lock:
            r = self.fault_rng.random()
            for kind, p in (("drop", f.p_drop), ("stall", f.p_stall)):
                if r < p and self.fault_counts[kind] < f.max_each:
                    self.fault_counts[kind] += 1
                    return kind
                r -= p
        return None

    def _slow(self, slow: bool) -> None:
        if slow:
            self.closing.wait(self.faults.slow_seconds)

    def _game_or_404(self, handler: "_Handler", status_box: list[int], game_id: str) -> FakeGame | None:
        game = self.games.get(game_id)
        if game is None:
            handler.reply(404, {"error": "No such game"}, status_box)
        return game

    # routes: each does its work under the lock, then (slow fault) waits, then replies
    def account(self, h: "_Handler", box: list[int], slow: bool, body: Any) -> None:
        self._slow(slow)
        now = int(time.time() * 1000)
        h.reply(200, {"id": BOT_ID, "username": BOT_NAME, "title": "BOT", "createdAt": now - 86400000,
                      "seenAt": now, "url": f"{self.url}@/{BOT_NAME}", "perfs": {}}, box)

    def playing(self, h: "_Handler", box: list[int], slow: bool, body: Any) -> None:
        with self.lock:
            now_playing = [self._game_event("gameStart", g)["game"] for g in self.games.values() if g.running]
        self._slow(slow)
        h.reply(200, {"nowPlaying": now_playing}, box)

    def move(self, h: "_Handler", box: list[int], slow: bool, game_id: str, uci: str, body: Any) -> None:
        with self.lock:
            game = self._game_or_404(h, box, game_id)
            if game is None:
                return
            error = None
            try:
                move = game.board.parse_uci(uci)
            except ValueError:
                move, error = None, "illegal"
            if not game.running:
                error = "over"
            elif game.board.turn != game.bot_color:
                error = "turn"
            if error is None and move is not None:
                game.bot_moves.append(uci)
                game.bot_move_times.append(time.monotonic() - game.turn_started)
                if game.draw_offer is not None and game.draw_offer != game.bot_color:
                    game.unanswered_draw_offers += 1
                game.draw_offer = None
                self._apply(game, move)
                game.opponent_due = time.monotonic() + game.script.move_delay
                if h.query.get("offeringDraw", [""])[0] == "true" and game.running:
                    game.bot_draw_offers.append(len(game.board.move_stack))
                    if game.script.accept_draws:
                        self._end(game, "draw")
                    else:
                        game.draw_offer = game.bot_color
                if game.running:
                    self._push(game)
            elif error != "over":
                if game.bot_moves and uci == game.bot_moves[-1]:
                    game.duplicate_moves += 1  # our reply was lost and the bot sent its move again
                else:
                    game.illegal_moves.append(f"{uci} in {game.board.fen()} ({error})")
        if error is not None:
            self._slow(slow)
            h.reply(400, {"error": "Not your turn, or game already over"}, box)
            return
        self._slow(slow)
        h.reply(200, {"ok": True}, box)

    def chat(self, h: "_Handler", box: list[int], slow: bool, game_id: str, body: Any) -> None:
        with self.lock:
            game = self._game_or_404(h, box, game_id)
            if game is None:
                return
            room, text = str(body.get("room", "player")), str(body.get("text", ""))
            game.chat.append((room, BOT_NAME, text))
            if room == "player":
                self._push(game, {"type": "chatLine", "room": "player", "username": BOT_NAME, "text": text})
            self.changed.notify_all()
        self._slow(slow)
        h.reply(200, {"ok": True}, box)

    def abort(self, h: "_Handler", box: list[int], slow: bool, game_id: str, body: Any) -> None:
        with self.lock:
            game = self._game_or_404(h, box, game_id)
            if game is None:
                return
            ok = game.running and len(game.board.move_stack) < 2
            if ok:
                game.aborted_by_bot = True
                self._end(game, "aborted")
        self._slow(slow)
        h.reply(200 if ok else 400, {"ok": True} if ok else {"error": "This game cannot be aborted"}, box)

    def resign(self, h: "_Handler", box: list[int], slow: bool, game_id: str, body: Any) -> None:
        with self.lock:
            game = self._game_or_404(h, box, game_id)
            if game is None:
                return
            ok = game.running
            if ok:
                game.bot_resigned = True
                self._end(game, "resign", "black" if game.bot_color == chess.WHITE else "white")
        self._slow(slow)
        h.reply(200 if ok else 400, {"ok": True} if ok else {"error": "Game is over"}, box)

    def draw(self, h: "_Handler", box: list[int], slow: bool, game_id: str, answer: str, body: Any) -> None:
        accept = answer in ("yes", "true")
        with self.lock:
            game = self._game_or_404(h, box, game_id)
            if game is None:
                return
            if game.running and game.draw_offer is not None and game.draw_offer != game.bot_color:
                game.draw_answers.append(accept)
                if accept:
                    self._end(game, "draw")
                else:
                    game.draw_offer = None
                    self._push(game)
        self._slow(slow)
        h.reply(200, {"ok": True}, box)

    def takeback(self, h: "_Handler", box: list[int], slow: bool, game_id: str, answer: str, body: Any) -> None:
        accept = answer in ("yes", "true")
        with self.lock:
            game = self._game_or_404(h, box, game_id)
            if game is None:
                return
            if game.running and game.takeback_offer is not None and game.takeback_offer != game.bot_color:
                game.takeback_answers.append(accept)
                if accept:  # the proposer's last move goes, with the bot's reply to it
                    game.board.pop()
                    game.board.pop()
                    game.turn_started = time.monotonic()
                    game.opponent_due = game.turn_started + game.script.move_delay
                game.takeback_offer = None
                self._push(game)
        self._slow(slow)
        h.reply(200, {"ok": True}, box)

    def claim_victory(self, h: "_Handler", box: list[int], slow: bool, game_id: str, body: Any) -> None:
        with self.lock:
            game = self._game_or_404(h, box, game_id)
            if game is None:
                return
            ok = (game.running and game.gone_since is not None
                  and time.monotonic() - game.gone_since >= game.script.claim_seconds)
            game.claims.append(ok)
            if ok:
                self._end(game, "timeout", game.bot_color_name)
        self._slow(slow)
        h.reply(200 if ok else 400, {"ok": True} if ok else {"error": "Cannot claim victory yet"}, box)

    def accept(self, h: "_Handler", box: list[int], slow: bool, challenge_id: str, body: Any) -> None:
        with self.lock:
            challenge = self.challenges.pop(challenge_id, None)
            if challenge is not None:
                control = challenge["timeControl"]
                clock = ((control["limit"] * 1000, control["increment"] * 1000) if control["type"] == "clock"
                         else None)
                game = self._create_game(challenge_id, challenge["challenger"],
                                         challenge["finalColor"] != "white", challenge["rated"],
                                         challenge["speed"], challenge["variant"]["key"], clock, "startpos",
                                         self.challenge_scripts[challenge_id])
                self.accepted.append(challenge_id)
                self._broadcast(self._game_event("gameStart", game))
        self._slow(slow)
        if challenge is None:
            h.reply(404, {"error": "Challenge not found"}, box)
        else:
            h.reply(200, {"ok": True}, box)

    def decline(self, h: "_Handler", box: list[int], slow: bool, challenge_id: str, body: Any) -> None:
        with self.lock:
            challenge = self.challenges.pop(challenge_id, None)
            if challenge is not None:
                self.declines[challenge_id] = str(body.get("reason", "generic"))
                self.changed.notify_all()
        self._slow(slow)
        if challenge is None:
            h.reply(404, {"error": "Challenge not found"}, box)
        else:
            h.reply(200, {"ok": True}, box)

    def list_online_bots(self, h: "_Handler", box: list[int], slow: bool, body: Any) -> None:
        with self.lock:
            users = []
            for user_id, (rating, _, _) in self.online_bots.items():
                user = _user(user_id.title(), True, user_id)
                user["username"] = user.pop("name")
                user["perfs"] = {speed: {"rating": rating, "games": 50, "prov": False}
                                 for speed in ("bullet", "blitz", "rapid", "classical", "correspondence")}
                users.append(user)
        self._slow(slow)
        data = b"".join(json.dumps(u).encode() + b"\n" for u in users)
        box[0] = 200
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def create_challenge(self, h: "_Handler", box: list[int], slow: bool, username: str, body: Any) -> None:
        with self.lock:
            user_id = username.lower()
            challenge_id = self._new_id()
            self.outgoing.append((challenge_id, username, dict(body)))
            known = self.online_bots.get(user_id)
            if known is None:
                h.reply(400, {"error": f"{username} cannot be challenged"}, box)
                return
            _, answer, script = known
            limit, increment = int(body.get("clock.limit", 60)), int(body.get("clock.increment", 0))
            challenge = {
                "id": challenge_id, "url": f"{self.url}{challenge_id}", "status": "created",
                "challenger": _user(BOT_NAME, True, BOT_ID), "destUser": _user(username, True, user_id),
                "variant": {"key": "standard", "name": "Standard", "short": "Std"},
                "rated": str(body.get("rated")).lower() == "true", "speed": _speed_of(limit, increment),
                "timeControl": {"type": "clock", "limit": limit, "increment": increment}, "color": "random",
                "direction": "out",
            }
            self._broadcast({"type": "challenge", "challenge": challenge})
            if answer == "accept":
                game = self._create_game(challenge_id, _user(username, True, user_id), self.rng.random() < 0.5,
                                         challenge["rated"], challenge["speed"], "standard",
                                         (limit * 1000, increment * 1000), "startpos", script)
                self._broadcast(self._game_event("gameStart", game))
            elif answer.startswith("decline"):
                key = answer.partition(":")[2] or "generic"
                self._broadcast({"type": "challengeDeclined", "challenge": {
                    **challenge, "status": "declined", "declineReason": key, "declineReasonKey": key}})
        self._slow(slow)
        h.reply(200, challenge, box)

    def cancel_outgoing(self, h: "_Handler", box: list[int], slow: bool, challenge_id: str, body: Any) -> None:
        with self.lock:
            self.cancelled.append(challenge_id)
            self.changed.notify_all()
        self._slow(slow)
        h.reply(200, {"ok": True}, box)

    def event_stream(self, h: "_Handler", box: list[int], slow: bool, body: Any) -> None:
        self._slow(slow)
        q: queue.Queue[Any] = queue.Queue()
        with self.lock:
            self.event_connections += 1
            for challenge in self.challenges.values():
                q.put({"type": "challenge", "challenge": challenge})
            if self.resend_games_on_connect:
                for game in self.games.values():
                    if game.running:
                        q.put(self._game_event("gameStart", game))
            self.event_streams.append(q)
        try:
            h.stream(self, q, box)
        finally:
            with self.lock:
                self.event_streams.remove(q)

    def game_stream(self, h: "_Handler", box: list[int], slow: bool, game_id: str, body: Any) -> None:
        self._slow(slow)
        q: queue.Queue[Any] = queue.Queue()
        with self.lock:
            game = self._game_or_404(h, box, game_id)
            if game is None:
                return
            self.game_connections[game_id] = self.game_connections.get(game_id, 0) + 1
            q.put(self._full(game))
            if game.running:
                if game.script.chat and self.game_connections[game_id] == 1:
                    q.put({"type": "chatLine", "room": "player", "username": game.opponent["name"],
                           "text": game.script.chat})
                if game.gone_since is not None:
                    q.put({"type": "opponentGone", "gone": True, "claimWinInSeconds": max(
                        0, math.ceil(game.script.claim_seconds - (time.monotonic() - game.gone_since)))})
                game.subscribers.append(q)
            else:
                q.put(END)
        try:
            h.stream(self, q, box)
        finally:
            with self.lock:
                if q in game.subscribers:
                    game.subscribers.remove(q)


ROUTES: list[tuple[str, str, Callable[..., None]]] = [
    (r"/api/account", "GET", FakeLichess.account),
    (r"/api/account/playing", "GET", FakeLichess.playing),
    (r"/api/stream/event", "GET", FakeLichess.event_stream),
    (r"/api/bot/game/stream/(\w+)", "GET", FakeLichess.game_stream),
    (r"/api/bot/game/(\w+)/move/(\w+)", "POST", FakeLichess.move),
    (r"/api/bot/game/(\w+)/chat", "POST", FakeLichess.chat),
    (r"/api/bot/game/(\w+)/abort", "POST", FakeLichess.abort),
    (r"/api/bot/game/(\w+)/resign", "POST", FakeLichess.resign),
    (r"/api/bot/game/(\w+)/draw/(yes|no|true|false)", "POST", FakeLichess.draw),
    (r"/api/bot/game/(\w+)/takeback/(yes|no|true|false)", "POST", FakeLichess.takeback),
    (r"/api/bot/game/(\w+)/claim-victory", "POST", FakeLichess.claim_victory),
    (r"/api/challenge/(\w+)/accept", "POST", FakeLichess.accept),
    (r"/api/challenge/(\w+)/decline", "POST", FakeLichess.decline),
    (r"/api/challenge/(\w+)/cancel", "POST", FakeLichess.cancel_outgoing),
    (r"/api/challenge/(\w+)", "POST", FakeLichess.create_challenge),
    (r"/api/bot/online", "GET", FakeLichess.list_online_bots),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away (the bot drops a stream, resets a kept-alive connection) is normal here;
        anything else is a bug in the fake, recorded for the tests to check."""
        import sys

        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, socket.timeout)):
            fake: FakeLichess = self.fake  # type: ignore[attr-defined]
            with fake.lock:
                fake.errors.append(f"{client_address}: {type(exc).__name__}: {exc}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    query: dict[str, list[str]] = {}

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        fake: FakeLichess = self.server.fake  # type: ignore[attr-defined]
        try:
            fake.handle(self, method)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception as exc:  # a bug in the fake: recorded, and the tests check there is none
            with fake.lock:
                fake.errors.append(f"{method} {self.path}: {type(exc).__name__}: {exc}")
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self, fake: FakeLichess) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        with fake.lock:
            fake.body_kinds.append(kind)
        if kind == "application/json":
            data = json.loads(raw)
            return data if isinstance(data, dict) else {}
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def reply(self, status: int, payload: dict[str, Any], box: list[int],
              headers: dict[str, str] | None = None) -> None:
        box[0] = status
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, fake: FakeLichess, q: queue.Queue[Any], box: list[int]) -> None:
        """Send `q`'s events as NDJSON chunks (keep-alive lines meanwhile) until END, a fault, or shutdown."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = True
        while not fake.closing.is_set():
            try:
                item = q.get(timeout=fake.keepalive_seconds)
            except queue.Empty:
                item = None
            if item is END:
                self.wfile.write(b"0\r\n\r\n")
                return
            if isinstance(item, dict) and item.get("type") == "__cut__":  # a test cuts this stream now
                self._cut()
                return
            line = b"\n" if item is None else json.dumps(item).encode() + b"\n"
            fault = None if first else fake._line_fault()
            first = False
            if fault == "drop":
                if len(line) > 2 and fake.fault_rng.random() < 0.5:  # cut in the middle of a line
                    part = line[: len(line) // 2]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self._cut()
                return
            if fault == "stall":
                fake.closing.wait(fake.faults.stall_seconds)
                self._cut()
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        self._cut()

    def _cut(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _user(name: str, bot: bool, user_id: str | None = None) -> dict[str, Any]:
    return {"id": user_id or name.lower(), "name": name, "title": "BOT" if bot else None, "rating": 1500,
            "provisional": False, "online": True}


def _speed_of(limit: int, increment: int) -> str:
    estimate = limit + 40 * increment
    for bound, speed in ((29, "ultraBullet"), (179, "bullet"), (479, "blitz"), (1499, "rapid")):
        if estimate <= bound:
            return speed
    return "classical"


def _mates(board: chess.Board, move: chess.Move) -> bool:
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()
