"""The Lichess bot's lichess-bot-level features against the fake Lichess (a real HTTP server on 127.0.0.1):
chat commands, resign and draw rules (off by default), matchmaking with the daily bot-game limit, a Polyglot
opening book, correspondence games that hold no thread while the opponent thinks."""

from __future__ import annotations

import sys
from pathlib import Path

import chess
import pytest

from gamegpt.bots.config import DrawRules, ResignRules
from gamegpt.bots.rules import GameJudgement, command_of, dead_drawn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_lichess import BOT_NAME, FakeLichess, Script
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
