"""The chess codecs on real games: every Fischer game round-trips, the text is Karvonen's, the tokens a model
writes for a move continue its prompt exactly, and start positions (Lichess puzzles) survive the move codec."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from typing import Any

import chess
import chess.pgn
import pytest

from gamegpt.games import DEFAULT_CODEC, codec_from_spec
from gamegpt.games.base import Codec, PrefixEncoder
from gamegpt.games.chess import ChessGame
from gamegpt.games.chess_codecs import PGN_VOCABULARY, MoveTokenCodec, PgnCharCodec
from gamegpt.games.tictactoe import TicTacToe
from gamegpt.resources import PUZZLE_SAMPLE, data_file
from shared_files import shared
KARVONEN_VOCABULARY = " #+-.0123456789;=BKNOQRabcdefghx"
FIRST_FISCHER_GAME = (
    ";1.d4 Nf6 2.c4 g6 3.Nc3 Bg7 4.e4 d6 5.Nf3 O-O 6.Bd3 Bg4 7.O-O Nc6 8.Be3 Nd7 9.Be2 Bxf3 10.Bxf3 e5 "
    "11.d5 Ne7 12.Be2 f5 13.f4 h6 14.Bd3 Kh7 15.Qe2 fxe4 16.Nxe4 Nf5 17.Bd2 exf4 18.Bxf4 Ne5 19.Bc2 Nd4 "
    "20.Qd2 Nxc4 21.Qf2 Rxf4 22.Qxf4 Ne2+ 23.Kh1 Nxf4"
)


@pytest.fixture(scope="module")
def fischer() -> tuple[list[chess.pgn.Game], int]:
    """The standard-chess games of fischer.pgn that parse cleanly, and how many were skipped."""
    games, skipped = [], 0
    with open(shared("games", "fischer.pgn"), encoding="utf-8", errors="replace") as handle:
        while (pgn := chess.pgn.read_game(handle)) is not None:
            if pgn.errors or pgn.headers.get("Variant", "Standard") != "Standard" or "FEN" in pgn.headers:
                skipped += 1
            else:
                games.append(pgn)
    return games, skipped


@pytest.fixture(scope="module")
def puzzles() -> list[tuple[str, list[chess.Move]]]:
    """(FEN, moves) of the first 150 Lichess puzzles."""
    with open(data_file(*PUZZLE_SAMPLE), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:150]
    return [(row["FEN"], [chess.Move.from_uci(uci) for uci in row["Moves"].split()]) for row in rows]


def exported_movetext(pgn: chess.pgn.Game) -> str:
    """Karvonen's text built from python-chess's own PGN writer: no headers, no result, `1.e4`."""
    exporter = chess.pgn.StringExporter(headers=False, variations=False, comments=False, columns=None)
    text = pgn.accept(exporter)
    text = text[: -len(pgn.headers["Result"])].strip() if text.endswith(pgn.headers["Result"]) else text.strip()
    return ";" + re.sub(r"(\d+)\. ", r"\1.", text)


def chars(text: str) -> list[int]:
    return [KARVONEN_VOCABULARY.index(char) for char in text]


def test_char_vocabulary_is_karvonens() -> None:
    codec = PgnCharCodec()
    assert PGN_VOCABULARY.encode() == KARVONEN_VOCABULARY.encode()
    assert codec.vocab_size == 32 and codec.bos == 15 == KARVONEN_VOCABULARY.index(";") and codec.eos is None
    assert codec.text_to_tokens(KARVONEN_VOCABULARY) == list(range(32))
    assert codec.text_to_tokens(" ") == [0]
    assert codec.tokens_to_text(range(32)) == KARVONEN_VOCABULARY
    with pytest.raises(ValueError, match="'{'"):
        codec.text_to_tokens("1.e4 {book}")
    with pytest.raises(ValueError, match="32"):
        codec.tokens_to_text([3, 32])


def test_first_fischer_game_is_the_hand_checked_text(fischer: tuple[list[chess.pgn.Game], int]) -> None:
    codec = PgnCharCodec()
    tokens = codec.encode_game(list(fischer[0][0].mainline_moves()))
    assert tokens[:5] == [15, 6, 4, 26, 9]  # ";1.d4"
    assert codec.tokens_to_text(tokens) == FIRST_FISCHER_GAME


def test_every_fischer_game_round_trips_through_both_codecs(fischer: tuple[list[chess.pgn.Game], int]) -> None:
    games, skipped = fischer
    char_codec, move_codec = PgnCharCodec(), MoveTokenCodec()
    for pgn in games:
        moves = list(pgn.mainline_moves())
        tokens = char_codec.encode_game(moves)
        assert char_codec.tokens_to_text(tokens) == exported_movetext(pgn)
        assert char_codec.decode_game(tokens) == (None, moves)
        move_tokens = move_codec.encode_game(moves)
        assert len(move_tokens) == len(moves) + 2 and move_tokens[-1] == move_codec.eos
        assert move_codec.decode_game(move_tokens) == (None, moves)
    assert len(games) > 800 and len(games) + skipped == 827


def played_tokens(codec: PgnCharCodec | MoveTokenCodec, game: ChessGame, move: chess.Move) -> tuple[int, ...]:
    sequences = codec.move_token_sequences(game)
    assert set(sequences.values()) == set(game.legal_moves()) and len(sequences) == len(game.legal_moves())
    assert not any(seq[:length] in sequences for seq in sequences for length in range(1, len(seq)))  # prefix-free
    (tokens,) = [seq for seq, legal in sequences.items() if legal == move]
    return tokens


def check_played_moves(codec: PgnCharCodec | MoveTokenCodec, moves: list[chess.Move], start: str | None, plies: range) -> int:
    """At each ply in `plies`: prompt + the played move's tokens continue the game's encoding, and
    `parse_move` reads those tokens back. Returns the number of positions checked."""
    full = codec.encode_game(moves, start)
    if isinstance(codec, PgnCharCodec):
        full = full + [codec.space]  # the last move's terminating space
    game = codec.new_game(start)
    checked = 0
    for ply, move in enumerate(moves):
        if ply in plies:
            prompt = codec.prefix_tokens(game)
            tokens = played_tokens(codec, game, move)
            assert prompt + list(tokens) == full[: len(prompt) + len(tokens)]
            assert codec.parse_move(game, tokens) == (move, True)
            assert codec.parse_move(game, list(tokens) + [codec.bos]) == (move, True)  # what follows is not read
            for length in range(len(tokens)):
                assert codec.parse_move(game, tokens[:length]) == (None, False)
            checked += 1
        game.push(move)
    return checked


def test_prompt_plus_move_tokens_continue_the_game(fischer: tuple[list[chess.pgn.Game], int]) -> None:
    checked = 0
    for number, pgn in enumerate(fischer[0][:50]):
        moves = list(pgn.mainline_moves())
        for codec in (PgnCharCodec(), MoveTokenCodec()):
            checked += check_played_moves(codec, moves, None, range(number % 7, len(moves), 7))
    assert checked > 1000


def encode_along(encoder: PrefixEncoder, start: str | None, moves: list[chess.Move], number: int,
                 every: int, takeback_every: int) -> tuple[int, int]:
    """Play `moves` from `start`, asking `encoder` for the prefix after every one to three moves (by
    `number`), and every `takeback_every` plies take back one or two moves (after the encoder has seen
    them) and play them again. At the start, at every `every`-th ply and around each takeback the
    encoder's tokens must be `codec.prefix_tokens(game)`. Returns (positions compared, takebacks)."""
    codec = encoder.codec
    game = codec.new_game(start)
    compared = takebacks = 0

    def compare() -> None:
        nonlocal compared
        assert encoder.prefix_tokens(game) == codec.prefix_tokens(game), (start, [m.uci() for m in game.history])
        compared += 1

    compare()
    for ply, move in enumerate(moves, start=1):
        game.push(move)
        if ply >= 2 and ply % takeback_every == number % takeback_every:
            encoder.prefix_tokens(game)
            taken = [game.pop() for _ in range(1 + ply % 2)]
            compare()
            for again in reversed(taken):
                game.push(again)
            compare()
            takebacks += 1
        elif ply % every == number % every:
            compare()
        elif ply % (1 + number % 3) == 0:
            encoder.prefix_tokens(game)
    return compared, takebacks


@pytest.mark.parametrize("codec", [PgnCharCodec(), MoveTokenCodec(), MoveTokenCodec(start_position=True)],
                         ids=["chars", "moves", "moves+position"])
def test_prefix_encoder_gives_the_prefix_tokens_of_every_position(
        codec: Codec, fischer: tuple[list[chess.pgn.Game], int], puzzles: list[tuple[str, list[chess.Move]]]) -> None:
    """One encoder follows 200 real games, each followed by a puzzle from its FEN (another start), with
    takebacks: its tokens are the codec's at every position compared, and it encodes a game in full only
    when it must (a new game or start, a takeback)."""
    encoder = PrefixEncoder(codec)
    compared = takebacks = games = 0
    every, takeback_every = (23, 41) if isinstance(codec, PgnCharCodec) else (3, 11)  # chars' prefix replays: slow
    for number, pgn in enumerate(fischer[0][:200]):
        for start, moves in ((None, list(pgn.mainline_moves())), puzzles[number % len(puzzles)]):
            counts = encode_along(encoder, start, moves, number, every, takeback_every)
            compared, takebacks, games = compared + counts[0], takebacks + counts[1], games + 1
    assert encoder.full_encodings == games + takebacks
    assert compared > 1500 and takebacks > 300


def reads(board: chess.Board, san: str) -> bool:
    """Whether python-chess reads `san` as a legal move (it is lenient about check marks)."""
    try:
        return bool(board.parse_san(san))
    except ValueError:
        return False


def test_char_parse_move_rejects_illegal_non_canonical_and_garbage(
        fischer: tuple[list[chess.pgn.Game], int]) -> None:
    codec = PgnCharCodec()
    cases = 0
    for number, pgn in enumerate(fischer[0][:50]):
        game = ChessGame()
        for ply, move in enumerate(pgn.mainline_moves()):
            if ply % 7 == number % 7:
                board = game.board
                lead = " " if board.turn == chess.BLACK and ply else ""
                illegal = next(s for s in ("Qh5", "Ke2", "Nd4", "a4", "Rxh8", "b8=Q", "O-O-O") if not reads(board, s))
                san = board.san(move)
                sloppy = san[:-1] if san[-1] in "+#" else san + "+"
                assert board.parse_san(sloppy) == move  # python-chess reads it; the codec must not
                for text in (illegal, sloppy, "--"):
                    assert codec.parse_move(game, codec.text_to_tokens(f"{lead}{text} ")) == (None, True)
                    assert codec.parse_move(game, codec.text_to_tokens(f"{lead}{text}")) == (None, False)
                wrong_lead = san + " " if lead else " " + san + " "
                assert codec.parse_move(game, codec.text_to_tokens(wrong_lead)) == (None, True)
                assert codec.parse_move(game, codec.text_to_tokens(lead + "a;")) == (None, True)
                assert codec.parse_move(game, codec.text_to_tokens((lead + "Nf3" * 4)[:9])) == (None, False)
                assert codec.parse_move(game, codec.text_to_tokens((lead + "Nf3" * 4)[:10])) == (None, True)
                cases += 1
            game.push(move)
    assert cases > 500


def test_char_codec_numbers_games_that_black_starts(puzzles: list[tuple[str, list[chess.Move]]]) -> None:
    codec = PgnCharCodec()
    after_e4 = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"
    moves = [chess.Move.from_uci(uci) for uci in ("e7e5", "g1f3", "b8c6")]
    assert codec.tokens_to_text(codec.encode_game(moves, after_e4)) == ";1...e5 2.Nf3 Nc6"
    game = codec.new_game(after_e4)
    assert codec.tokens_to_text(codec.prefix_tokens(game)) == ";1..."
    assert codec.parse_move(game, codec.text_to_tokens("e5 ")) == (moves[0], True)
    game.push(moves[0])
    assert codec.tokens_to_text(codec.prefix_tokens(game)) == ";1...e5 2."
    with pytest.raises(ValueError, match="Black"):
        codec.decode_game(codec.encode_game(moves, after_e4))
    checked = sum(check_played_moves(codec, moves, fen, range(len(moves))) for fen, moves in puzzles[:40])
    assert checked > 100


def test_move_vocabulary_is_computed_and_pinned() -> None:
    vocabulary = MoveTokenCodec.vocabulary_moves()
    assert len(vocabulary) == len(set(vocabulary)) == 1968
    assert sum(1 for move in vocabulary if move.promotion) == 176  # 44 pawn moves x 4 pieces
    assert MoveTokenCodec().vocab_size == MoveTokenCodec(start_position=True).vocab_size == 2001
    ucis = {move.uci() for move in vocabulary}
    assert {"e1g1", "e8c8", "g1f3", "a7b8n", "h2h1q", "e7e8", "e7e8q", "d5e6"} <= ucis
    assert not {"a1b4", "e2e2", "e7e8k", "e6e7q", "a7c8q"} & ucis
    # The token order is part of every checkpoint made with this codec: changing it must fail here.
    digest = hashlib.sha256(" ".join(move.uci() for move in vocabulary).encode()).hexdigest()
    assert digest == "dc57a266fe5a6f19f056af975ba3a80b81cd177f7440227f44c83deca87da643"


def test_move_codec_parse_move() -> None:
    codec = MoveTokenCodec()
    game = ChessGame()
    assert codec.parse_move(game, []) == (None, False)
    assert codec.parse_move(game, [codec.move_token(chess.Move.from_uci("e2e4"))]) == (chess.Move.from_uci("e2e4"),
                                                                                       True)
    assert codec.parse_move(game, [codec.move_token(chess.Move.from_uci("e2e5"))]) == (None, True)
    assert codec.parse_move(game, [codec.bos]) == (None, True)
    assert codec.tokens_to_text(codec.encode_game([chess.Move.from_uci("e2e4")], finished=False)) == "<bos> e2e4"
    with pytest.raises(ValueError, match="illegal move e2e5"):
        codec.encode_game([chess.Move.from_uci("e2e5")])


def normalized(fen: str) -> str:
    """A FEN without its move counters (the move codec does not keep them)."""
    return " ".join(chess.Board(fen).fen().split()[:4])


def test_move_codec_keeps_start_positions(puzzles: list[tuple[str, list[chess.Move]]]) -> None:
    codec = MoveTokenCodec(start_position=True)
    prompts: dict[tuple[int, ...], str] = {}
    for fen, moves in puzzles:
        tokens = codec.encode_game(moves, fen)
        assert tokens[1] == codec.position_token and tokens[72] == codec.moves_token
        start, decoded = codec.decode_game(tokens)
        assert start is not None and normalized(start) == normalized(fen) and decoded == moves
        prompt = tuple(codec.prefix_tokens(codec.new_game(fen)))
        assert prompts.setdefault(prompt, normalized(fen)) == normalized(fen)
    assert len(prompts) == len({normalized(fen) for fen, _ in puzzles}) > 100
    checked = sum(check_played_moves(codec, moves, fen, range(len(moves))) for fen, moves in puzzles[:40])
    assert checked > 100
    # Standard games carry no position block, and without start_position a FEN start is left out.
    assert codec.prefix_tokens(ChessGame()) == [codec.bos]
    assert MoveTokenCodec().prefix_tokens(ChessGame(puzzles[0][0])) == [codec.bos]


def test_move_codec_writes_en_passant_only_when_it_can_be_played() -> None:
    codec = MoveTokenCodec(start_position=True)
    capturable = "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3"
    tokens = codec.prefix_tokens(ChessGame(capturable))
    assert codec.token_names[tokens[71]] == "ep:f"
    assert codec.decode_game(tokens)[0] == capturable.replace(" 0 3", " 0 1")
    # After 1.e4 no black pawn can take on e3: the same position as without the square, the same prompt.
    with_square = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq e3 0 1"
    without = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"
    assert codec.prefix_tokens(ChessGame(with_square)) == codec.prefix_tokens(ChessGame(without))
    assert codec.token_names[codec.prefix_tokens(ChessGame(without))[71]] == "ep:-"


def test_move_codec_rejects_bad_position_blocks(puzzles: list[tuple[str, list[chess.Move]]]) -> None:
    codec = MoveTokenCodec(start_position=True)
    fen, moves = puzzles[0]
    tokens = codec.encode_game(moves, fen)
    no_side = tokens[:66] + [tokens[2]] + tokens[67:]
    kings = {codec.token_names.index("sq:K"), codec.token_names.index("sq:k")}
    no_kings = [codec.token_names.index("sq:.") if t in kings else t for t in tokens]
    assert fen.split()[2] == "K" and codec.token_names[tokens[69]] == "castle:-"
    wrong_slot = tokens[:67] + [codec.token_names.index("castle:Q")] + tokens[68:]
    unusable_right = tokens[:69] + [codec.token_names.index("castle:k")] + tokens[70:]
    for bad in (no_side, no_kings, wrong_slot, unusable_right, tokens[:40], tokens[:-1] + [codec.bos]):
        with pytest.raises(ValueError):
            codec.decode_game(bad)


@pytest.mark.parametrize("codec", [PgnCharCodec(), MoveTokenCodec(), MoveTokenCodec(start_position=True)],
                         ids=["chars", "moves", "moves+position"])
def test_codec_from_spec_rebuilds_the_codec(codec: Codec) -> None:
    spec: dict[str, Any] = json.loads(json.dumps(codec.spec()))
    assert set(spec) == {"name", "vocab_size", "start_position"}
    rebuilt = codec_from_spec(spec)
    assert type(rebuilt) is type(codec) and rebuilt.spec() == spec
    assert rebuilt.tokens_to_text(range(rebuilt.vocab_size)) == codec.tokens_to_text(range(codec.vocab_size))
    assert (rebuilt.bos, rebuilt.eos) == (codec.bos, codec.eos)


def test_registry_defaults_and_refusals() -> None:
    assert DEFAULT_CODEC["chess"] == "chess-pgn-chars"
    assert codec_from_spec("chess-uci-moves").spec() == {"name": "chess-uci-moves", "vocab_size": 2001,
                                                         "start_position": False}
    with pytest.raises(ValueError, match="start position"):
        codec_from_spec({"name": "chess-pgn-chars", "start_position": True})
    with pytest.raises(TypeError):
        PgnCharCodec().prefix_tokens(TicTacToe())


@pytest.mark.parametrize("codec", [PgnCharCodec(), MoveTokenCodec()], ids=["chars", "moves"])
def test_untrained_model_plays_legal_chess_through_the_codec(codec: Codec) -> None:
    import torch

    from gamegpt.core.model import GPT, GPTConfig
    from gamegpt.engine.model_player import ModelPlayer
    from gamegpt.engine.settings import DecodingSettings
    from gamegpt.games.base import InvalidMove

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=codec.vocab_size, block_size=256, n_layer=1, n_head=2, n_embd=16)).eval()
    masked = ModelPlayer(model, codec, settings=DecodingSettings(policy="mask", temperature=1.0))
    raw = ModelPlayer(model, codec, settings=DecodingSettings(policy="raw", temperature=1.0))
    game = ChessGame()
    for _ in range(30):
        if game.outcome() is not None:
            break
        assert isinstance(raw.choose(game), (chess.Move, InvalidMove))
        move = masked.choose(game)
        assert game.is_legal(move)
        game.push(move)
    assert len(game.history) >= 10
