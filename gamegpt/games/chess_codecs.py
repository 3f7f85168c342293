"""Chess codecs: Karvonen's character PGN (`chess-pgn-chars`), one token per move (`chess-uci-moves`), and the
position written out before each move (`chess-position-move`, on chess-uci-moves' tokens).

All encode `ChessGame`s (moves are `chess.Move`, castling as the king's move `e1g1`) and refuse other games
with TypeError. Encoding checks every move and raises ValueError naming the first illegal one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import chess
import numpy as np

from gamegpt.games.base import Codec, Game
from gamegpt.games.chess import ChessGame
from gamegpt.games.chess_move_values import MoveValueTable

PGN_VOCABULARY = " #+-.0123456789;=BKNOQRabcdefghx"
"""Karvonen's 32 characters; a character's token is its index here (space = 0, ';' = 15)."""

_PGN_INDEX = {char: index for index, char in enumerate(PGN_VOCABULARY)}
_MOVE_WORD = re.compile(r"(?:(\d+)(\.\.\.|\.))?(.*)")
_SPACE_DIGIT = re.compile(re.escape(bytes([_PGN_INDEX[" "]])) + b"["
                          + re.escape(bytes(_PGN_INDEX[d] for d in "0123456789")) + b"]")
"""A space token then a digit token, in tokens written as bytes (one byte a token)."""


def _board(game: Game[Any]) -> chess.Board:
    """The board of a chess game; TypeError for any other game."""
    if not isinstance(game, ChessGame):
        raise TypeError(f"chess codecs encode ChessGame, not {type(game).__name__}")
    return game.board


def _start_board(start: str | None) -> chess.Board:
    return chess.Board(start) if start is not None else chess.Board()


def _checked_push(board: chess.Board, move: chess.Move, ply: int) -> None:
    """Push `move` on `board`, or raise ValueError naming the ply and position."""
    if not isinstance(move, chess.Move) or not board.is_legal(move):
        raise ValueError(f"illegal move {move} at ply {ply} in {board.fen()}")
    board.push(move)


class PgnCharCodec(Codec):
    """Karvonen's character PGN: `;1.e4 e5 2.Nf3 Nc6 3.Bb5`, one token per character of `PGN_VOCABULARY`.

    A game is `;` (bos; there is no eos) and its movetext: SAN with `+`/`#`, `O-O`, `e8=Q`, no headers, no
    result, no space after a move number's dot, one space between moves. Numbering always starts at 1;
    a game whose first move is Black's reads `;1...e5 2.Nf3`. The start position is not in the text
    (`spec()` says `"start_position": false`), so `decode_game` reads every text as a game from the standard
    start: the text of a game from another position gives ValueError or, by chance, other legal moves.

    For playing, the text is cut so that what the model writes is always consistent with the next prefix:
      * `prefix_tokens(game)`: `;` + the history, then `" 2."` if White is to move (just `;1.` at the
        start, `;1...` if Black moves first from a FEN), nothing more if Black is to move (`;1.e4`).
      * the tokens of a move: White's (and a first Black move after `1...`) are SAN + " " (`Nf3 `),
        Black's otherwise " " + SAN + " " (` Nc6 `). The set of a position's moves is prefix-free.
      * `parse_move` is complete at the first space after a non-space character (with the move if it is
        the exact SAN `board.san` writes and legal, else None), or as None on garbage: a missing or
        unexpected leading space, a `;`, or `max_move_tokens` tokens without a space.
    """

    name = "chess-pgn-chars"
    vocab_size = len(PGN_VOCABULARY)
    bos = _PGN_INDEX[";"]
    eos = None
    max_move_tokens = 10
    """The longest move is 9 tokens: Black's ` exd8=Q+ ` (SAN has at most 7 characters)."""

    space = _PGN_INDEX[" "]
    """The token that ends every move (0)."""

    def __init__(self, start_position: bool = False) -> None:
        if start_position:
            raise ValueError("chess-pgn-chars cannot encode a start position (the text is movetext only)")

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "vocab_size": self.vocab_size, "start_position": False}

    # --- text <-> tokens -------------------------------------------------------------------------

    @staticmethod
    def text_to_tokens(text: str) -> list[int]:
        """The tokens of `text`; ValueError naming the first character outside the vocabulary."""
        try:
            return [_PGN_INDEX[char] for char in text]
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} is not in the chess-pgn-chars vocabulary "
                             f"{PGN_VOCABULARY!r}") from None

    def tokens_to_text(self, tokens: Sequence[int]) -> str:
        """The characters of `tokens`; ValueError for a token outside [0, 32)."""
        chars = []
        for token in tokens:
            if not 0 <= token < self.vocab_size:
                raise ValueError(f"token {token} is outside the {self.vocab_size}-token chess-pgn-chars vocabulary")
            chars.append(PGN_VOCABULARY[token])
        return "".join(chars)

    # --- text of games and positions ----------------------------------------------------------------

    @staticmethod
    def _pieces(board: chess.Board, moves: Sequence[chess.Move], first_ply: int = 0) -> list[str]:
        """The text of each move as it appears in the game (" 2.Nf3", " Nc6", "1.e4", "1...e5"), pushing
        the moves on `board`. `first_ply` is the number of plies already played from the start."""
        black_first = (board.turn == chess.BLACK) == (first_ply % 2 == 0)
        pieces = []
        for ply, move in enumerate(moves, start=first_ply):
            if not isinstance(move, chess.Move) or not board.is_legal(move):
                raise ValueError(f"illegal move {move} at ply {ply + 1} in {board.fen()}")
            pieces.append(PgnCharCodec._piece(ply, black_first, board.san(move)))
            board.push(move)
        return pieces

    @staticmethod
    def _piece(ply: int, black_first: bool, san: str) -> str:
        """The text of the move `san` at `ply` (0-based from the start) in the game text."""
        counted = ply + black_first
        separator = " " if ply else ""
        if counted % 2 == 0:
            return f"{separator}{counted // 2 + 1}.{san}"
        if ply == 0:
            return f"1...{san}"
        return f"{separator}{san}"

    @staticmethod
    def _continuation(board: chess.Board, plies: int) -> str:
        """What the prefix adds after `plies` moves: the next move number if White is to move."""
        if board.turn == chess.WHITE:
            black_first = plies % 2 == 1
            return f"{' ' if plies else ''}{(plies + black_first) // 2 + 1}."
        return "" if plies else "1..."

    def game_text(self, moves: Sequence[chess.Move], start: str | None = None) -> str:
        """The text of a whole game: `;1.e4 e5 2.Nf3` (no trailing number or space). ValueError on an
        illegal move."""
        return ";" + "".join(self._pieces(_start_board(start), moves))

    def prefix_text(self, game: Game[Any]) -> str:
        """The text the model reads before `game`'s next move, e.g. `;1.e4 e5 2.` or `;1.e4`."""
        _board(game)
        board = _start_board(game.start)
        history = game.history
        return ";" + "".join(self._pieces(board, history)) + self._continuation(board, len(history))

    @staticmethod
    def _move_text(board: chess.Board, plies: int, san: str) -> str:
        """The text the model writes for the move `san` after `plies` plies: `Nf3 ` for White, ` Nc6 ` for Black."""
        leading = " " if board.turn == chess.BLACK and plies else ""
        return f"{leading}{san} "

    # --- Codec ---------------------------------------------------------------------------------------

    def new_game(self, start: str | None = None) -> ChessGame:
        return ChessGame(start)

    def prefix_tokens(self, game: Game[Any]) -> list[int]:
        return self.text_to_tokens(self.prefix_text(game))

    def continuation_tokens(self, game: Game[Any]) -> list[int]:
        """The next move number that ends the prefix (` 2.`, `1.`, `1...`), or nothing when Black is to move."""
        board = _board(game)
        return self.text_to_tokens(self._continuation(board, len(board.move_stack)))

    def recent_moves_tokens(self, game: Game[Any], count: int) -> list[int]:
        """The text of the last `count` moves (` 2.Nf3 Nc6`), written from the board `count` plies back (the
        SAN of a move needs only the position before it, its number only the ply count)."""
        board = _board(game)
        if count == 0:
            return []
        before = board.copy(stack=count)  # a copy of the last `count` moves only, not of the whole game
        moves = before.move_stack[-count:]
        for _ in range(count):
            before.pop()
        return self.text_to_tokens("".join(self._pieces(before, moves, first_ply=len(board.move_stack) - count)))

    def encode_moves(self, game_before: Game[Any], moves: Sequence[Any]) -> list[int]:
        """The text that follows `prefix_tokens(game_before)` in the game text once `moves` are played
        (so `prefix_tokens + encode_moves` is the game text); empty for no moves."""
        if not moves:
            return []
        _board(game_before)
        board = _start_board(game_before.start)
        history = game_before.history
        before = self._pieces(board, history)
        prefix = "".join(before) + self._continuation(board, len(history))
        after = "".join(before + self._pieces(board, moves, first_ply=len(history)))
        return self.text_to_tokens(after[len(prefix):])

    def encode_game(self, moves: Sequence[Any], start: str | None = None, finished: bool = True) -> list[int]:
        """The tokens of `game_text(moves, start)`; `finished` changes nothing (there is no eos)."""
        return self.text_to_tokens(self.game_text(moves, start))

    def decode_game(self, tokens: Sequence[int]) -> tuple[str | None, list[chess.Move]]:
        """The moves of a game text (`encode_game`'s, or a `prefix_tokens` one ending in `N.`), always from
        the standard start. ValueError on text that is not exactly that form or not a legal game."""
        text = self.tokens_to_text(tokens)
        if not text.startswith(";"):
            raise ValueError(f"chess-pgn-chars text must start with ';', got {text[:40]!r}")
        body = text[1:]
        if ";" in body:
            raise ValueError(f"more than one game (a second ';' at character {body.index(';') + 1})")
        board = chess.Board()
        pieces: list[str] = []
        words = body.split(" ") if body else []
        for number, word in enumerate(words):
            match = _MOVE_WORD.fullmatch(word)
            assert match is not None  # the pattern matches every string
            dots, san = match.group(2), match.group(3)
            if dots == "..." and number == 0:
                raise ValueError("the game starts with Black's move ('1...'): its start position is not in "
                                 "chess-pgn-chars text, so it cannot be decoded")
            if not san:
                if dots and number == len(words) - 1:
                    break  # a prefix that ends with the next move number
                raise ValueError(f"empty move in word {number + 1} of {text!r}")
            move = self._canonical_move(board, san)
            if move is None:
                raise ValueError(f"illegal or non-canonical move {san!r} at ply {len(pieces) + 1} of {text!r}")
            pieces.append(self._piece(len(pieces), False, san))
            board.push(move)
        full = ";" + "".join(pieces)
        if text != full and text != full + self._continuation(board, len(pieces)):
            at = next((i for i, (a, b) in enumerate(zip(text, full)) if a != b), min(len(text), len(full)))
            raise ValueError(f"not chess-pgn-chars form at character {at}: expected {full!r}, got {text!r}")
        return None, list(board.move_stack)

    @staticmethod
    def _canonical_move(board: chess.Board, san: str) -> chess.Move | None:
        """The move `san` names if it is legal and written exactly as `board.san` writes it, else None."""
        try:
            move = board.parse_san(san)
        except ValueError:
            return None
        if not move or board.san(move) != san:  # parse_san reads "--" as the (falsy) null move
            return None
        return move

    def move_token_sequences(self, game: Game[Any]) -> dict[tuple[int, ...], chess.Move]:
        board = _board(game)
        plies = len(game.history)
        return {tuple(self.text_to_tokens(self._move_text(board, plies, board.san(move)))): move
                for move in game.legal_moves()}

    def cut_points(self, tokens: Sequence[int]) -> tuple[int, list[int]]:
        """Keep `;` and cut before a White move number (`;1.e4 e5 2.Nf3` → `;2.Nf3`): the kept text still
        reads like a game's movetext, if one with an unusual first move number."""
        try:
            as_bytes = bytes(tokens)  # scanned by `re` at C speed: a long game is cut at every move
        except ValueError:  # a token that is no byte (not a chess-pgn-chars token): scan it token by token
            digits = {_PGN_INDEX[d] for d in "0123456789"}
            return 1, [i for i in range(2, len(tokens)) if tokens[i] in digits and tokens[i - 1] == self.space]
        return 1, [match.start() + 1 for match in _SPACE_DIGIT.finditer(as_bytes, 1)]

    def parse_move(self, game: Game[Any], tokens: Sequence[int]) -> tuple[chess.Move | None, bool]:
        board = _board(game)
        expects_space = board.turn == chess.BLACK and bool(game.history)
        chars: list[str] = []
        for position, token in enumerate(tokens[:self.max_move_tokens]):
            if not 0 <= token < self.vocab_size or token == self.bos:
                return None, True
            char = PGN_VOCABULARY[token]
            if position == 0 and expects_space:
                if char != " ":
                    return None, True
            elif char == " ":
                if not chars:
                    return None, True
                move = self._canonical_move(board, "".join(chars))
                return (move if move is not None and game.is_legal(move) else None), True
            else:
                chars.append(char)
        return None, len(tokens) >= self.max_move_tokens


# --- one token per move --------------------------------------------------------------------------------

PROMOTION_PIECES = (chess.QUEEN, chess.ROOK, chess.BISHOP, chess.KNIGHT)


def _vocabulary_moves() -> list[chess.Move]:
    """Every move that is legal in some position of standard chess, ordered by (from, to, promotion).

    Plain moves: (from, to) pairs a queen (1456) or a knight (336) could make on an empty board: 1792. Every
    piece's move, castling (`e1g1`) and en passant are among them. Promotions: a pawn from the 7th rank to the
    8th or from the 2nd to the 1st, straight or diagonally (22 per side), to q/r/b/n: 44 x 4 = 176. The plain
    pair `e7e8` stays a (rook's or queen's) move, so queen promotions are separate tokens: 1968 in all.
    """
    moves = []
    for from_square in chess.SQUARES:
        for to_square in chess.SQUARES:
            files = abs(chess.square_file(from_square) - chess.square_file(to_square))
            ranks = abs(chess.square_rank(from_square) - chess.square_rank(to_square))
            queen = (files == 0 or ranks == 0 or files == ranks) and (files, ranks) != (0, 0)
            knight = {files, ranks} == {1, 2}
            if queen or knight:
                moves.append(chess.Move(from_square, to_square))
            from_rank, to_rank = chess.square_rank(from_square), chess.square_rank(to_square)
            if files <= 1 and (from_rank, to_rank) in ((6, 7), (1, 0)):
                moves.extend(chess.Move(from_square, to_square, piece) for piece in sorted(PROMOTION_PIECES))
    return moves


_VOCABULARY_MOVES = tuple(_vocabulary_moves())
_MOVE_INDEX = {move: index for index, move in enumerate(_VOCABULARY_MOVES)}
_SQUARE_SYMBOLS = (".", "P", "N", "B", "R", "Q", "K", "p", "n", "b", "r", "q", "k")


def _square_classes(board: chess.Board) -> np.ndarray:
    """The 64 squares (a1 ... h8) of `board` as `_SQUARE_SYMBOLS` indices (int8)."""
    classes = np.zeros(64, dtype=np.int8)
    for color, offset in ((chess.WHITE, 0), (chess.BLACK, 6)):
        for piece_type in chess.PIECE_TYPES:
            for square in chess.scan_forward(board.pieces_mask(piece_type, color)):
                classes[square] = offset + piece_type
    return classes
_CASTLING = (("K", chess.BB_H1), ("Q", chess.BB_A1), ("k", chess.BB_H8), ("q", chess.BB_A8))


class MoveTokenCodec(Codec):
    """One token per move: `bos`, [position block], the moves, `eos` if the game is finished.

    Tokens 0-1967 are the moves of `vocabulary_moves()` (see `_vocabulary_moves` for the count), then
    `bos` 1968, `eos` 1969, and 31 tokens for start positions: `<position>`, `<moves>`, 13 square classes
    (`.` empty, `PNBRQK` white, `pnbrqk` black), 2 sides to move, 5 castling tokens (`K`, `Q`, `k`, `q` and
    `-` for a right that is absent) and 9 en-passant tokens (a file, or `-`): 2001 tokens in all, whatever
    `start_position` is.

    With `start_position=True`, a game that does not start from the standard position has after `bos` the
    block `<position>`, 64 squares a1, b1, ..., h8, the side to move, the rights K Q k q (each its own token
    or `-`), the file of a legal en-passant capture (or `-`), `<moves>`: 72 tokens. Move counters are not
    encoded (a decoded start has `0 1`). Standard games never have the block, so they encode the same way
    under both settings. With `start_position=False` a non-standard start is simply left out: `new_game`,
    `prefix_tokens` and `encode_game` still work, but the model reads the moves as if from the standard
    start (off its training distribution), and `decode_game` cannot recover the start.
    """

    name = "chess-uci-moves"
    max_move_tokens = 1
    N_MOVES = len(_VOCABULARY_MOVES)

    def __init__(self, start_position: bool = False) -> None:
        self.start_position = bool(start_position)
        names = [move.uci() for move in _VOCABULARY_MOVES]
        names += ["<bos>", "<eos>", "<position>", "<moves>"]
        names += [f"sq:{symbol}" for symbol in _SQUARE_SYMBOLS]
        names += ["side:w", "side:b"]
        names += [f"castle:{right}" for right, _ in _CASTLING] + ["castle:-"]
        names += [f"ep:{file}" for file in chess.FILE_NAMES] + ["ep:-"]
        # A readable name per token (UCI for moves); `tokens_to_text` joins them with spaces.
        self.token_names: tuple[str, ...] = tuple(names)
        self._index = {name: index for index, name in enumerate(names)}
        self.vocab_size = len(names)
        self.bos = self._index["<bos>"]
        self.eos = self._index["<eos>"]
        self.position_token = self._index["<position>"]
        self.moves_token = self._index["<moves>"]

    @staticmethod
    def vocabulary_moves() -> tuple[chess.Move, ...]:
        """The moves of tokens 0..1967, in token order."""
        return _VOCABULARY_MOVES

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "vocab_size": self.vocab_size, "start_position": self.start_position}

    def move_token(self, move: chess.Move) -> int:
        """The token of `move`; ValueError if no chess position has it as a legal move."""
        try:
            return _MOVE_INDEX[move]
        except KeyError:
            raise ValueError(f"{move} is not a move of the chess-uci-moves vocabulary") from None

    def token_move(self, token: int) -> chess.Move | None:
        """The move of `token`, or None for a special token or one outside the vocabulary."""
        return _VOCABULARY_MOVES[token] if 0 <= token < self.N_MOVES else None

    # --- start positions -----------------------------------------------------------------------------

    def position_tokens(self, board: chess.Board) -> list[int]:
        """The 72-token block of `board`'s position: `<position>` ... `<moves>` (move counters left out)."""
        index = self._index
        tokens = [self.position_token]
        for square in chess.SQUARES:
            piece = board.piece_at(square)
            tokens.append(index[f"sq:{piece.symbol() if piece else '.'}"])
        tokens.append(index["side:w" if board.turn == chess.WHITE else "side:b"])
        rights = board.clean_castling_rights()
        tokens += [index[f"castle:{right}" if rights & rook else "castle:-"] for right, rook in _CASTLING]
        ep = board.ep_square if board.has_legal_en_passant() else None
        tokens.append(index[f"ep:{chess.FILE_NAMES[chess.square_file(ep)]}" if ep is not None else "ep:-"])
        tokens.append(self.moves_token)
        return tokens

    def _read_position(self, block: Sequence[int]) -> chess.Board:
        """The board of a position block (as `position_tokens` writes it); ValueError if malformed."""
        names = [self.token_names[t] for t in block]
        if len(block) != 72 or names[0] != "<position>" or names[-1] != "<moves>":
            raise ValueError("a position block is <position>, 64 squares, side, 4 castling, en passant, <moves>")
        board = chess.Board(None)
        for square, name in zip(chess.SQUARES, names[1:65]):
            if not name.startswith("sq:"):
                raise ValueError(f"square {chess.square_name(square)} has token {name!r}, not a square class")
            if name != "sq:.":
                board.set_piece_at(square, chess.Piece.from_symbol(name[3:]))
        side, castling, ep = names[65], names[66:70], names[70]
        if side not in ("side:w", "side:b"):
            raise ValueError(f"side to move is {side!r}")
        board.turn = side == "side:w"
        rights = 0
        for (right, rook), name in zip(_CASTLING, castling):
            if name not in (f"castle:{right}", "castle:-"):
                raise ValueError(f"castling right {right} is {name!r}")
            rights |= rook if name != "castle:-" else 0
        board.castling_rights = rights
        if not ep.startswith("ep:"):
            raise ValueError(f"en-passant token is {ep!r}")
        if ep != "ep:-":
            board.ep_square = chess.square(chess.FILE_NAMES.index(ep[3:]), 5 if board.turn == chess.WHITE else 2)
        if not board.is_valid():
            raise ValueError(f"position block is not a legal position ({board.status()!r}): {board.fen()}")
        if self.position_tokens(board) != list(block):
            raise ValueError(f"position block is not canonical (castling or en passant that cannot be used): "
                             f"{board.fen()}")
        return board

    # --- board targets (an auxiliary loss) -------------------------------------------------------------

    BOARD_CLASSES = len(_SQUARE_SYMBOLS)
    """Classes of a square in `board_targets`: 0 empty, 1-6 white P N B R Q K, 7-12 black p n b r q k."""

    def board_targets(self, tokens: Sequence[int]) -> np.ndarray:
        """For each token, the board once it is read: int8 array (len(tokens), 64), squares a1, b1, ..., h8, each
        a class of `BOARD_CLASSES`; a row of -1 where no board is known.

        Reads packed game text (shard blocks): `<bos>` starts the standard position (unless a position block
        follows: its row is then -1), a position block sets its
        board at `<moves>`, each move token is played. Rows are -1 inside a position block, after `<eos>`, and
        from an illegal move or a malformed block until the next `<bos>` (corrupt data costs labels, never an
        exception). Row t is what a model reading tokens[:t+1] must know to choose the next move.
        """
        rows = np.full((len(tokens), 64), -1, dtype=np.int8)
        for at, board in self._boards(tokens):
            rows[at] = _square_classes(board)
        return rows

    def legal_targets(self, tokens: Sequence[int]) -> np.ndarray:
        """For each token whose next token is a move: the legal moves of the board once it is read, as a bool
        array (len(tokens), N_MOVES) (True at the tokens of the legal moves). A row is all False where the next
        token is not a move (`<eos>`, `<bos>`, a position block, the last token), where no board is known (as in
        `board_targets`), and where the board has no legal move. Row t is the set a model reading tokens[:t+1]
        should put its probability on (the labels of `TrainConfig.legal_loss_weight`)."""
        rows = np.zeros((len(tokens), self.N_MOVES), dtype=bool)
        for at, board in self._boards(tokens):
            if at + 1 < len(tokens) and int(tokens[at + 1]) < self.N_MOVES:
                rows[at, [_MOVE_INDEX[move] for move in board.legal_moves]] = True
        return rows

    def value_targets(self, tokens: Sequence[int], table: MoveValueTable, temperature: float) -> np.ndarray:
        """For each token whose next token is a move and whose board is in `table`: the teacher's distribution
        over the moves (`MoveValueTable.target` at `temperature`), as float16 (len(tokens), N_MOVES); rows of
        zeros elsewhere (the labels of `TrainConfig.distill_values`)."""
        rows = np.zeros((len(tokens), self.N_MOVES), dtype=np.float16)
        for at, board in self._boards(tokens):
            if at + 1 < len(tokens) and int(tokens[at + 1]) < self.N_MOVES:
                found = table.target(board, temperature)
                if found is not None:
                    moves, probabilities = found
                    known = [i for i, move in enumerate(moves) if move in _MOVE_INDEX]  # a corrupt table's codes
                    rows[at, [_MOVE_INDEX[moves[i]] for i in known]] = probabilities[known]
        return rows

    def _boards(self, tokens: Sequence[int]) -> Iterator[tuple[int, chess.Board]]:
        """(t, the board once tokens[:t+1] are read) for each token where a board is known (see
        `board_targets`); the board is played on after it is yielded."""
        board: chess.Board | None = None
        block_start: int | None = None
        for at, token in enumerate(tokens):
            token = int(token)
            if token == self.bos:  # the standard start, unless a position block follows
                starts_block = at + 1 < len(tokens) and int(tokens[at + 1]) == self.position_token
                board, block_start = (None if starts_block else chess.Board()), None
            elif token == self.position_token:
                board, block_start = None, at
            elif token == self.moves_token and block_start is not None:
                try:
                    board = self._read_position([int(t) for t in tokens[block_start:at + 1]])
                except (ValueError, IndexError):
                    board = None
                block_start = None
            elif board is not None and block_start is None:
                move = self.token_move(token)
                if move is None or not board.is_legal(move):
                    board = None  # eos, or a move this board does not allow
                else:
                    board.push(move)
            if board is not None and block_start is None:
                yield at, board

    # --- Codec ---------------------------------------------------------------------------------------

    def new_game(self, start: str | None = None) -> ChessGame:
        return ChessGame(start)

    def prefix_tokens(self, game: Game[Any]) -> list[int]:
        _board(game)
        tokens = [self.bos]
        if self.start_position and game.start is not None:
            tokens += self.position_tokens(chess.Board(game.start))
        return tokens + [self.move_token(move) for move in game.history]  # checked when they were pushed

    def recent_moves_tokens(self, game: Game[Any], count: int) -> list[int]:
        history = _board(game).move_stack
        return [self.move_token(move) for move in history[len(history) - count:]]  # checked when they were pushed

    def encode_moves(self, game_before: Game[Any], moves: Sequence[Any]) -> list[int]:
        board = _board(game_before).copy()
        tokens = []
        for ply, move in enumerate(moves, start=len(game_before.history) + 1):
            _checked_push(board, move, ply)
            tokens.append(self.move_token(move))
        return tokens

    def decode_game(self, tokens: Sequence[int]) -> tuple[str | None, list[chess.Move]]:
        """The start (a FEN with counters `0 1`, or None) and moves. Reads a position block whatever
        `start_position` is. ValueError on tokens that are not a legal game."""
        tokens = list(tokens)
        if any(not 0 <= t < self.vocab_size for t in tokens):
            raise ValueError(f"a token is outside the {self.vocab_size}-token chess-uci-moves vocabulary")
        if not tokens or tokens[0] != self.bos:
            raise ValueError("an encoded chess-uci-moves game starts with <bos>")
        body = tokens[1:]
        if body and body[-1] == self.eos:
            body = body[:-1]
        start: str | None = None
        board = chess.Board()
        if body and body[0] == self.position_token:
            board = self._read_position(body[:72])
            body = body[72:]
            start = ChessGame(board.fen()).start
        for ply, token in enumerate(body, start=1):
            move = self.token_move(token)
            if move is None:
                raise ValueError(f"token {self.token_names[token]!r} where move {ply} should be")
            _checked_push(board, move, ply)
        return start, list(board.move_stack)

    def move_token_sequences(self, game: Game[Any]) -> dict[tuple[int, ...], chess.Move]:
        _board(game)
        return {(self.move_token(move),): move for move in game.legal_moves()}

    def cut_points(self, tokens: Sequence[int]) -> tuple[int, list[int]]:
        """Keep `<bos>` and the position block (if any); cut before every other move (parity kept)."""
        header = 73 if len(tokens) > 1 and tokens[1] == self.position_token else 1
        return header, list(range(header, len(tokens), 2))

    def parse_move(self, game: Game[Any], tokens: Sequence[int]) -> tuple[chess.Move | None, bool]:
        if not tokens:
            return None, False
        move = self.token_move(tokens[0])
        return (move if move is not None and game.is_legal(move) else None), True

    def tokens_to_text(self, tokens: Sequence[int]) -> str:
        """The token names joined by spaces (`<bos> e2e4 e7e5`); ValueError for a token outside the vocabulary."""
        for token in tokens:
            if not 0 <= token < self.vocab_size:
                raise ValueError(f"token {token} is outside the {self.vocab_size}-token chess-uci-moves vocabulary")
        return " ".join(self.token_names[t] for t in tokens)


# --- the position, then the move ---------------------------------------------------------------------


class PositionMoveCodec(MoveTokenCodec):
    """The position, then the move: the model reads the board instead of reconstructing it from the moves.

    The same 2001 tokens as `chess-uci-moves` (the same ids: one vocabulary, one token per move). The prefix of
    a game is `<bos>` and the block of its current position, as `MoveTokenCodec.position_tokens` writes it:
    `<position>`, the 64 squares a1..h8, the side to move, the castling rights K Q k q, the en-passant file,
    `<moves>` (73 tokens; searchless_chess's FEN form without the move counters). The moves that led there
    are not in it, so a game from a FEN, or a UCI `position fen`, is read like any other
    (`spec()["start_position"]` is true), and `PrefixEncoder` encodes each new position in full
    (`prefix_is_game_text` is False).

    Not encoded: the halfmove clock and the fullmove number (they would need tokens that chess-uci-moves
    lacks), nor the positions before: the model cannot see the 50-move rule or a repetition coming.

    Training text: `encode_game` writes one sample per move played, `<bos>` + block + the move's token, 74
    tokens (`sample_len`), one after the other; shards make each sample a block of its own and the loss counts
    only the move, the target after `<moves>` (`scored_targets`). There is no eos. `decode_game` reads such a
    text back and checks that each sample's position is the one the moves before it reach; its last sample
    may lack its move (a prefix: `decode_game(prefix_tokens(game))` is that position and no moves).
    """

    name = "chess-position-move"
    prefix_is_game_text = False
    sample_len = 74

    def __init__(self, start_position: bool = True) -> None:
        if not start_position:
            raise ValueError("chess-position-move always reads the position (start_position cannot be false)")
        super().__init__(start_position=True)
        self.eos = None

    def scored_targets(self) -> dict[str, int]:
        """The loss counts only the move after `<moves>`: a target after that token that is a move token."""
        return {"after": self.moves_token, "below": self.N_MOVES}

    def prefix_tokens(self, game: Game[Any]) -> list[int]:
        """`<bos>` and the block of `game`'s current position (73 tokens), whatever moves led there."""
        return [self.bos] + self.position_tokens(_board(game))

    def recent_moves_tokens(self, game: Game[Any], count: int) -> list[int]:
        raise NotImplementedError("chess-position-move prefixes are positions, not game text: encode them in full")

    def encode_moves(self, game_before: Game[Any], moves: Sequence[Any]) -> list[int]:
        """The samples of `moves` played from `game_before` (not changed): for each, the block of the position
        it is played in and its token. ValueError naming the first illegal move."""
        board = _board(game_before).copy(stack=False)
        tokens: list[int] = []
        for ply, move in enumerate(moves, start=len(game_before.history) + 1):
            sample = [self.bos, *self.position_tokens(board)]
            _checked_push(board, move, ply)
            tokens += sample
            tokens.append(self.move_token(move))
        return tokens

    def encode_game(self, moves: Sequence[Any], start: str | None = None, finished: bool = True) -> list[int]:
        """One sample per move (see the class docstring); empty for no moves; `finished` changes nothing."""
        return self.encode_moves(self.new_game(start), moves)

    def decode_game(self, tokens: Sequence[int]) -> tuple[str | None, list[chess.Move]]:
        """The start (a FEN with counters `0 1`, or None for the standard position) and the moves of a text of
        samples; ValueError if it is not one (a position that the moves before it do not reach, an illegal
        move, a malformed block)."""
        tokens = list(tokens)
        if any(not 0 <= t < self.vocab_size for t in tokens):
            raise ValueError(f"a token is outside the {self.vocab_size}-token chess-position-move vocabulary")
        size = self.sample_len
        if not tokens or len(tokens) % size not in (0, size - 1):
            raise ValueError(f"chess-position-move text is samples of {size} tokens (the last may lack its move), "
                             f"got {len(tokens)} tokens")
        board: chess.Board | None = None
        start: str | None = None
        for number, at in enumerate(range(0, len(tokens), size), start=1):
            sample = tokens[at:at + size]
            if sample[0] != self.bos:
                raise ValueError(f"sample {number} does not start with <bos>")
            block = sample[1:size - 1]
            if board is None:
                board = self._read_position(block)
                start = ChessGame(board.fen()).start
            elif block != self.position_tokens(board):
                raise ValueError(f"sample {number}'s position is not the one the moves before it reach ({board.fen()})")
            if len(sample) == size:
                move = self.token_move(sample[-1])
                if move is None:
                    raise ValueError(f"token {self.token_names[sample[-1]]!r} where move {number} should be")
                _checked_push(board, move, number)
        assert board is not None
        return start, list(board.move_stack)

    def cut_points(self, tokens: Sequence[int]) -> tuple[int, list[int]]:
        """Never cut: the whole prefix is one position, which a model trained on these samples holds."""
        return len(tokens), []
