"""Players, the arena, game records and resumable self-play, on real tic-tac-toe games."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gamegpt.errors import PlayerSpecError, RecordsError, UserError
from gamegpt.arena.play import play_game
from gamegpt.games.base import InvalidMove
from gamegpt.games.tictactoe import TicTacToe
from gamegpt.players.base import Noisy, Player, RandomPlayer
from gamegpt.players.newell_simon import NewellSimonPlayer
from gamegpt.arena.specs import PlayerSpec, make_player
from gamegpt.arena.records import GameRecord, RecordWriter, read_records
from gamegpt.selfplay.runner import run_selfplay


class Scripted(Player):
    """Plays the given moves in order (an illegal one included, to test the arena)."""

    def __init__(self, moves: list[object]) -> None:
        self.moves = moves

    def reset(self, seed: int) -> None:
        self.queue = list(self.moves)

    def choose(self, game):  # type: ignore[no-untyped-def]
        return self.queue.pop(0)


def test_noisy_player_matches_its_rate() -> None:
    game = TicTacToe([0, 4])  # X to move; Newell-Simon has exactly one move here (block is not needed: 8)
    perfect = NewellSimonPlayer()
    perfect.reset(0)
    own = set(perfect.candidates(game))
    for rate in (0.0, 0.3, 1.0):
        noisy = Noisy(NewellSimonPlayer(), rate)
        noisy.reset(7)
        moves = [noisy.choose(game) for _ in range(4000)]
        off = sum(m not in own for m in moves) / len(moves)
        expected = rate * (1 - len(own) / len(game.legal_moves()))  # a random move may hit an own move
        assert abs(off - expected) < 0.03, (rate, off, expected)


def test_seeded_players_repeat_their_games() -> None:
    first = [play_game(TicTacToe(), [Noisy(NewellSimonPlayer(), 0.5), RandomPlayer()], seed=s) for s in range(20)]
    again = [play_game(TicTacToe(), [Noisy(NewellSimonPlayer(), 0.5), RandomPlayer()], seed=s) for s in range(20)]
    assert [r.moves for r in first] == [r.moves for r in again]
    assert len({tuple(r.moves) for r in first}) > 5


@pytest.mark.parametrize("bad", [4, InvalidMove("9"), "e4"])
def test_arena_scores_an_illegal_move_as_a_loss(bad: object) -> None:
    record = play_game(TicTacToe(), [Scripted([4, 0]), Scripted([bad])], seed=1)
    assert record.result == "1-0" and record.termination == "illegal_move"
    assert record.extra["illegal"]["side"] == 1 and record.moves == ["4"]


def test_arena_records_finished_games_and_adjudicates_max_plies() -> None:
    record = play_game(TicTacToe(), [NewellSimonPlayer(), NewellSimonPlayer()], seed=3)
    assert record.result == "1/2-1/2" and record.termination == "board_full" and len(record.moves) == 9
    assert record.players == [{"name": "newell-simon"}, {"name": "newell-simon"}]
    short = play_game(TicTacToe(), [RandomPlayer(), RandomPlayer()], seed=3, max_plies=3)
    assert short.termination == "max_plies" and len(short.moves) == 3
    assert GameRecord.from_dict(json.loads(record.to_json())) == record


def test_player_specs() -> None:
    assert PlayerSpec.parse("NS:noise=0.25") == PlayerSpec("newell-simon", {"noise": "0.25"})
    noisy = make_player("newell-simon:noise=0.25", "tictactoe")
    assert isinstance(noisy, Noisy) and noisy.noise == 0.25
    for bad in ("stockfish-ish", "random:depth=3", "random:noise=2", "random:noise", "newell-simon:x"):
        with pytest.raises(PlayerSpecError):
            make_player(bad, "tictactoe")


def test_selfplay_continues_to_the_requested_count_without_duplicates(tmp_path: Path) -> None:
    specs = ["newell-simon:noise=0.3", "random"]
    straight = tmp_path / "straight.jsonl"
    run_selfplay("tictactoe", specs, n_games=60, seed=5, out=straight, progress=False)
    resumed = tmp_path / "resumed.jsonl"
    run_selfplay("tictactoe", specs, n_games=25, seed=5, out=resumed, progress=False)
    with resumed.open("a") as handle:  # a record cut off by a kill mid-write
        handle.write('{"game":"tictactoe","moves":["4","0"')
    result = run_selfplay("tictactoe", specs, n_games=60, seed=5, out=resumed, progress=False)
    assert result.games_new == 35 and result.games_total == 60
    assert resumed.read_text() == straight.read_text()
    with pytest.raises(UserError, match="other settings"):
        run_selfplay("tictactoe", ["random", "random"], n_games=70, seed=5, out=resumed, progress=False)


def test_malformed_records_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = GameRecord("tictactoe", ["4"], [], "*", "").to_json()
    path.write_text(good + "\n" + '{"game": "tictactoe", "moves": "4 0", "result": "1-0"}\n' + good + "\n")
    with pytest.raises(RecordsError, match=r"bad.jsonl:2: .*moves"):
        read_records(path)
    path.write_text(good + "\nnot json\n" + good + "\n")
    with pytest.raises(RecordsError, match=r"bad.jsonl:2"):
        read_records(path)
    with pytest.raises(RecordsError, match="not found"):
        read_records(tmp_path / "missing.jsonl")


def test_record_writer_cuts_a_truncated_tail(tmp_path: Path) -> None:
    path = tmp_path / "games.jsonl"
    record = GameRecord("tictactoe", ["4", "0"], [], "*", "")
    path.write_text(record.to_json() + "\n" + record.to_json()[:10])
    with RecordWriter(path) as writer:
        writer.write(record)
    assert read_records(path) == [record, record]
