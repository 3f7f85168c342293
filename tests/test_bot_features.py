"""The Lichess bot's lichess-bot-level features against the fake Lichess (a real HTTP server on 127.0.0.1):
chat commands, resign and draw rules (off by default), matchmaking with the daily bot-game limit, a Polyglot
opening book, correspondence games that hold no thread while the opponent thinks."""

from __future__ import annotations

import json
import struct
import sys
import threading
import time
from pathlib import Path

import chess
import chess.polyglot
import pytest

from gamegpt.bots.config import BotConfig, DrawRules, ResignRules, load_config
from gamegpt.bots.matchmaking import BotGameCounter
from gamegpt.bots.moves import GameMoveChooser
from gamegpt.bots.rules import GameJudgement, command_of, dead_drawn
from gamegpt.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_lichess import BOT_ID, BOT_NAME, FakeLichess, Script
from test_lichess_bot import (TOKEN, assert_token_never_logged, check_game, debug_logs, make_config,  # noqa: F401
                              running_bot, wait_results)

LOSING_WHITE = "rq1qk3/8/8/8/8/8/4P3/4K3 w - - 0 1"  # White (the bot): a pawn against two queens and a rook
DEAD_DRAW_WHITE = "8/8/4k3/8/8/2N5/8/4K1b1 w - - 0 1"  # knight against bishop, no pawns
DEAD_DRAW_BLACK = DEAD_DRAW_WHITE  # the bot as Black has the bishop


# --------------------------------------------------------------------------- chat commands
def test_chat_commands(untrained_chess_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                       capfd: pytest.CaptureFixture[str]) -> None:
    with FakeLichess(TOKEN) as fake:
        config = make_config(fake, tmp_path, untrained_chess_model, games={"howto": "Read the README."})
        with running_bot(config) as bot:
            gid = fake.challenge("Alice", color="black", script=Script(resign_at_ply=60, move_delay=0.05))
            assert fake.wait_for(lambda: gid in fake.games and len(fake.games[gid].moves) >= 4, 20)
            for room, text in (("spectator", "!eval"), ("player", "!eval"), ("player", "!name"),
                               ("spectator", "!queue"), ("player", "!howto please"), ("spectator", "!HELP"),
                               ("player", "!unknown"), ("player", "no command")):
                fake.say(gid, text, room=room)
            game = fake.games[gid]
            assert fake.wait_for(lambda: len(game.chat) >= 7, 10), game.chat  # greeting + 6 answers
            wait_results(fake, bot, [gid])
        check_game(fake, game, bot, status="resign")
        answers = game.chat[1:-1]  # between the greeting and the goodbye
        assert len(answers) == 6, answers
        by_room = {(room, text.split(":")[0].split(" ")[0]) for room, _, text in answers}
        assert ("spectator", "Evaluation") in by_room
        spectator_eval = next(text for room, _, text in answers if room == "spectator" and text.startswith("Evaluation"))
        assert f"Evaluation for {BOT_NAME}: " in spectator_eval and "no value head" in spectator_eval
        refused = [text for room, _, text in answers if room == "player" and "spectators only" in text]
        assert len(refused) == 1 and "Evaluation" not in refused[0]  # the opponent gets no evaluation
        name = next(text for room, _, text in answers if room == "player" and text.startswith(BOT_NAME))
        assert "gamegpt" in name and untrained_chess_model.name in name
        queue = next(text for room, _, text in answers if room == "spectator" and text.startswith("Playing"))
        assert queue.startswith("Playing 1 game (at most 4 at once); 0 challenges waiting")
        assert ("player", BOT_NAME, "Read the README.") in answers
        assert any(room == "spectator" and "!help" in text and "!queue" in text for room, _, text in answers)
    assert_token_never_logged(caplog, capfd)


def test_chat_commands_can_be_switched_off(untrained_chess_model: Path, tmp_path: Path) -> None:
    with FakeLichess(TOKEN) as fake:
        config = make_config(fake, tmp_path, untrained_chess_model, games={"chat_commands": False, "greeting": "",
                                                                           "goodbye": ""})
        with running_bot(config) as bot:
            gid = fake.challenge("Alice", script=Script(resign_at_ply=16, move_delay=0.05))
            assert fake.wait_for(lambda: gid in fake.games and len(fake.games[gid].moves) >= 2, 20)
            fake.say(gid, "!help", room="spectator")
            wait_results(fake, bot, [gid])
        assert fake.games[gid].chat == []


def test_command_parsing() -> None:
    assert command_of("!eval") == "eval" and command_of("  !Queue now") == "queue"
    assert command_of("eval") is None and command_of("!rm -rf") is None and command_of("") is None


# --------------------------------------------------------------------------- resign and draw rules
def test_rules_unit() -> None:
    assert dead_drawn(chess.Board(DEAD_DRAW_WHITE)) and dead_drawn(chess.Board("8/8/4k3/8/8/8/8/4K3 w - - 0 1"))
    assert not dead_drawn(chess.Board("8/8/4k3/8/8/2N5/4P3/4K1b1 w - - 0 1"))  # a pawn
    assert not dead_drawn(chess.Board("8/8/4k3/8/8/2NN4/8/4K1b1 w - - 0 1"))  # two knights
    assert not dead_drawn(chess.Board())
    board = chess.Board(LOSING_WHITE)
    judge = GameJudgement(chess.WHITE, ResignRules(enabled=True, score=-1000, moves=2), DrawRules())
    assert judge.record(board) < -1000
    assert not judge.should_resign(board)  # one turn only
    judge.record(board)  # the same position again (a reconnect): still one turn
    assert not judge.should_resign(board)
    board.push_uci("e2e3")
    board.push_uci("d8d7")
    judge.record(board)
    assert judge.should_resign(board)
    assert not GameJudgement(chess.WHITE, ResignRules(), DrawRules()).should_resign(board)  # off by default
    # level and few pieces for `moves` turns: a draw is worth offering, once every `moves` turns
    level = chess.Board("4k3/4r3/8/8/8/8/4R3/4K3 w - - 0 1")
    judge = GameJudgement(chess.WHITE, ResignRules(), DrawRules(enabled=True, moves=2, score=30, max_pieces=4))
    judge.record(level)
    assert not judge.draw_worthy(level)
    level.push_uci("e1d1")
    level.push_uci("e8d8")
    judge.record(level)
    assert judge.draw_worthy(level) and judge.should_offer_draw(level)
    judge.last_offer_ply = len(level.move_stack)
    level.push_uci("d1e1")
    level.push_uci("d8e8")
    judge.record(level)
    assert judge.draw_worthy(level) and not judge.should_offer_draw(level)  # offered a turn ago
    assert not GameJudgement(chess.WHITE, ResignRules(), DrawRules()).draw_worthy(chess.Board(DEAD_DRAW_WHITE))


def test_resigns_a_lost_game_only_when_enabled(untrained_chess_model: Path, tmp_path: Path) -> None:
    with FakeLichess(TOKEN) as fake:
        config = make_config(fake, tmp_path, untrained_chess_model, resign={"enabled": True, "moves": 3})
        with running_bot(config) as bot:
            gid = fake.start_game("Strong", bot_color="white", fen=LOSING_WHITE, script=Script(resign_at_ply=None))
            wait_results(fake, bot, [gid], timeout=20)
        game = fake.games[gid]
        assert game.status == "resign" and game.bot_resigned and game.winner == "black"
        assert len(game.bot_moves) == 2  # resigned at its third turn, before a third move
        assert game.illegal_moves == [] and bot.results[gid].status == "resign"

        config = make_config(fake, tmp_path, untrained_chess_model)  # the default: never resign
        with running_bot(config) as bot:
            gid = fake.start_game("Strong", bot_color="white", fen=LOSING_WHITE, script=Script(resign_at_ply=12))
            wait_results(fake, bot, [gid], timeout=20)
        check_game(fake, fake.games[gid], bot, status="resign")
        assert fake.games[gid].winner == "white"


def test_offers_and_accepts_draws_in_dead_drawn_positions(untrained_chess_model: Path, tmp_path: Path) -> None:
    with FakeLichess(TOKEN) as fake:
        config = make_config(fake, tmp_path, untrained_chess_model, draw={"enabled": True})
        with running_bot(config) as bot:
            offered = fake.start_game("Agreeable", bot_color="white", fen=DEAD_DRAW_WHITE,
                                      script=Script(resign_at_ply=None, accept_draws=True))
            # the bot plays Black: the opponent offers with its first move; games.draw_offers is "decline"
            asked = fake.start_game("Offerer", bot_color="black", fen=DEAD_DRAW_BLACK,
                                    script=Script(resign_at_ply=None, draw_offer_plies=(1,)))
            wait_results(fake, bot, [offered, asked], timeout=20)
        for gid in (offered, asked):
            check_game(fake, fake.games[gid], bot, status="draw")
        assert fake.games[offered].bot_draw_offers == [1]  # offered with its first move
        assert fake.games[asked].draw_answers == [True]

        config = make_config(fake, tmp_path, untrained_chess_model)  # the default: no offers, offers declined
        with running_bot(config) as bot:
            # (short games: a capture would leave too little material for Lichess, which ends them drawn)
            quiet = fake.start_game("Agreeable", bot_color="white", fen=DEAD_DRAW_WHITE,
                                    script=Script(resign_at_ply=1, accept_draws=True))
            asked = fake.start_game("Offerer", bot_color="black", fen=DEAD_DRAW_BLACK,
                                    script=Script(resign_at_ply=2, draw_offer_plies=(1,)))
            wait_results(fake, bot, [quiet, asked], timeout=20)
        for gid in (quiet, asked):
            check_game(fake, fake.games[gid], bot, status="resign")
        assert fake.games[quiet].bot_draw_offers == [] and fake.games[asked].draw_answers == [False]
        assert len(fake.games[quiet].bot_moves) == 1 and len(fake.games[asked].bot_moves) == 1


# --------------------------------------------------------------------------- matchmaking
def matchmaking_config(fake: FakeLichess, tmp_path: Path, model: Path, **values: object) -> BotConfig:
    settings = {"enabled": True, "idle_seconds": 0.3, "rating_min": 1400, "rating_max": 1800, "base_seconds": 60,
                "increment_seconds": 1, "challenge_timeout_seconds": 0.8, "decline_backoff_seconds": 30.0,
                "bot_games_per_day": 2, "count_file": str(tmp_path / "count.json")}
    settings.update(values)
    return make_config(fake, tmp_path, model, matchmaking=settings)


def test_matchmaking_challenges_bots_until_the_daily_limit(untrained_chess_model: Path, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    with FakeLichess(TOKEN) as fake:
        fake.add_online_bot(BOT_ID, 1500)  # itself: never challenged
        fake.add_online_bot("LowBot", 1000)  # out of the rating range
        fake.add_online_bot("Decliner", 1500, answer="decline:tooFast")
        fake.add_online_bot("Ignorer", 1600, answer="ignore")
        fake.add_online_bot("Player", 1550, script=Script(resign_at_ply=10))
        config = matchmaking_config(fake, tmp_path, untrained_chess_model)
        with running_bot(config) as bot:
            assert fake.wait_for(lambda: sum(g.running is False for g in fake.games.values()) >= 2, 30), fake.outgoing
            games = list(fake.games)
            wait_results(fake, bot, games)
            time.sleep(1.5)  # idle well past idle_seconds: no challenge may follow at the limit
        assert len(fake.games) == 2
        for game_id in games:
            game = fake.games[game_id]
            check_game(fake, game, bot, status="resign")
            assert game.opponent["name"].lower() == "player" and game.speed == "bullet"
        challenged = [name.lower() for _, name, _ in fake.outgoing]
        assert challenged.count("player") == 2 and set(challenged) <= {"player", "decliner", "ignorer"}
        assert challenged.count("decliner") <= 1 and challenged.count("ignorer") <= 1  # backed off after one
        ignored = [cid for cid, name, _ in fake.outgoing if name.lower() == "ignorer"]
        assert fake.cancelled == ignored  # the unanswered challenge was cancelled
        params = fake.outgoing[0][2]
        assert params["clock.limit"] == "60" and params["clock.increment"] == "1" and params["rated"] == "false"
        count = json.loads((tmp_path / "count.json").read_text())
        assert sorted(count["games"]) == sorted(games)
        assert "no more challenges today" in caplog.text

        # the count survives a restart: no challenge, and a bot's challenge is declined with `later`
        fake.outgoing.clear()
        with running_bot(matchmaking_config(fake, tmp_path, untrained_chess_model)):
            robo = fake.challenge("Robo", bot=True)
            human = fake.challenge("Human", script=Script(resign_at_ply=6))
            assert fake.wait_for(lambda: robo in fake.declines and human in fake.accepted, 10)
            time.sleep(0.8)
        assert fake.declines[robo] == "later" and fake.outgoing == []
    assert_token_never_logged(caplog, capfd)


def test_bot_game_counter_rolls_over_at_midnight(tmp_path: Path) -> None:
    day = ["2030-01-01"]
    path = tmp_path / "sub" / "count.json"
    counter = BotGameCounter(path, 2, today=lambda: day[0])
    assert counter.add("a") and not counter.add("a") and counter.add("b")
    assert counter.reached()
    assert BotGameCounter(path, 2, today=lambda: day[0]).count() == 2  # read back
    day[0] = "2030-01-02"
    assert counter.count() == 0 and not counter.reached()
    assert BotGameCounter(path, 2, today=lambda: day[0]).count() == 0
    path.write_text("{not json")
    assert BotGameCounter(path, 2, today=lambda: day[0]).count() == 0  # a broken file: counted afresh, said


def test_matchmaking_config_errors(tmp_path: Path) -> None:
    for text, needle in (("matchmaking: {bot_games_per_day: 150}", "at most Lichess's limit 100"),
                         ("matchmaking: {rating_min: 1800, rating_max: 1200}", "rating_max (1200) is below"),
                         ("resign: {moves: 0}", "resign.moves must be at least 1"),
                         ("engine: {book: /no/such/book.bin}", "engine.book: no such file"),
                         ("engine: {book_selection: first}", "engine.book_selection must be one of")):
        path = tmp_path / "bot.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert needle in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- opening book, correspondence
def polyglot_key_move(board: chess.Board, uci: str) -> tuple[int, int]:
    move = chess.Move.from_uci(uci)
    promotion = (move.promotion - 1) if move.promotion else 0
    return chess.polyglot.zobrist_hash(board), move.to_square | (move.from_square << 6) | (promotion << 12)


def write_book(path: Path, entries: list[tuple[chess.Board, str, int]]) -> Path:
    """A Polyglot book: 16-byte big-endian entries (key, move, weight, learn) sorted by key."""
    rows = sorted((*polyglot_key_move(board, uci), weight) for board, uci, weight in entries)
    path.write_bytes(b"".join(struct.pack(">QHHI", key, move, weight, 0) for key, move, weight in rows))
    return path


def tiny_book(path: Path) -> Path:
    """1. g4 (weight 10) or 1. b3 (weight 1) from the start; ...h5 against every first move."""
    start = chess.Board()
    entries = [(start, "g2g4", 10), (start, "b2b3", 1)]
    for move in start.legal_moves:
        board = start.copy()
        board.push(move)
        entries.append((board, "h7h5", 5))
    return write_book(path, entries)


def test_opening_book_moves(tmp_path: Path) -> None:
    book = tiny_book(tmp_path / "book.bin")
    settings = BotConfig().engine
    settings.book, settings.book_selection = str(book), "weighted"
    chooser = GameMoveChooser(None, settings)
    picks = {chooser.book_move(chess.Board(), seed).uci() for seed in range(40)}
    assert picks == {"g2g4", "b2b3"}  # weighted: both
    settings.book_selection = "best"
    assert {chooser.book_move(chess.Board(), seed).uci() for seed in range(10)} == {"g2g4"}
    after = chess.Board()
    after.push_uci("e2e4")
    assert chooser.book_move(after, 0) == chess.Move.from_uci("h7h5")
    after.push_uci("h7h5")
    assert chooser.book_move(after, 0) is None  # not in the book
    settings.book_depth = 1
    assert chooser.book_move(chess.Board(), 0) is not None and chooser.book_move(chess.Board("8/8/8/8/8/8/8/K1k5 w - - 0 1"), 0) is None


def test_bot_plays_from_its_opening_book(untrained_chess_model: Path, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    book = tiny_book(tmp_path / "book.bin")
    with FakeLichess(TOKEN) as fake:
        config = make_config(fake, tmp_path, untrained_chess_model, engine={"book": str(book), "book_selection": "best"})
        with running_bot(config) as bot:
            ids = [fake.challenge("Alice", color="black", script=Script(resign_at_ply=8)),
                   fake.challenge("Bob", color="white", script=Script(resign_at_ply=9))]
            wait_results(fake, bot, ids)
        for game_id in ids:
            check_game(fake, fake.games[game_id], bot, status="resign")
        assert fake.games[ids[0]].bot_moves[0] == "g2g4" and fake.games[ids[1]].bot_moves[0] == "h7h5"
        assert "book move" in caplog.text
        caplog.clear()
        config = make_config(fake, tmp_path, untrained_chess_model)  # off by default
        with running_bot(config) as bot:
            gid = fake.challenge("Carol", color="black", script=Script(resign_at_ply=4))
            wait_results(fake, bot, [gid])
        assert "book move" not in caplog.text


def test_correspondence_games_hold_no_thread_while_the_opponent_thinks(untrained_chess_model: Path,
                                                                       tmp_path: Path) -> None:
    with FakeLichess(TOKEN) as fake:
        config = make_config(fake, tmp_path, untrained_chess_model,
                             challenge={"speeds": ["blitz", "correspondence"]},
                             correspondence={"checkin_seconds": 0.2, "disconnect_seconds": 0.2})
        with running_bot(config) as bot:
            gid = fake.challenge("Slow", days=2, color="black", script=Script(resign_at_ply=9, move_delay=1.0))
            assert fake.wait_for(lambda: gid in fake.games, 10)
            game = fake.games[gid]

            def asleep() -> bool:
                theirs = game.running and game.board.turn != game.bot_color and len(game.moves) >= 2
                return theirs and not any(t.name == f"game-{gid}" for t in threading.enumerate())

            assert fake.wait_for(asleep, 20), "the game's thread never ended while the opponent thought"
            wait_results(fake, bot, [gid], timeout=30)
        check_game(fake, game, bot, status="resign")  # the opponent resigned while the bot slept
        assert game.clock is None and fake.game_connections[gid] >= 4  # woken for each move, and for the end
