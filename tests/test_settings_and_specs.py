"""One set of decoding settings (one default, one check each) and player specs built as data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from gamegpt.arena.specs import PlayerSpec, make_player, with_noise
from gamegpt.bots.config import BotConfig, load_config
from gamegpt.engine.model_player import ModelPlayer
from gamegpt.engine.settings import DEFAULTS, DecodingSettings
from gamegpt.engine.uci import Options, UciServer
from gamegpt.errors import ConfigError, PlayerSpecError


# --------------------------------------------------------------------------- decoding settings
def test_every_front_end_starts_from_the_same_defaults() -> None:
    engine = BotConfig().engine
    assert engine.decoding == DEFAULTS
    assert Options().decoding == DEFAULTS
    assert (DEFAULTS.policy, DEFAULTS.temperature, DEFAULTS.top_k, DEFAULTS.move_overhead_ms) == ("mask", 0.001, 0, 100)


@pytest.mark.parametrize("key, value, needle", [
    ("temperature", -1.0, "temperature must be a number >= 0"),
    ("temperature", float("inf"), "temperature must be a number >= 0"),
    ("policy", "greedy", "policy must be one of raw, retry, mask"),
    ("top_k", -2, "top_k must be a whole number >= 0"),
    ("threads", 0, "threads must be a whole number >= 1"),
    ("move_overhead_ms", -5, "move_overhead_ms must be a whole number >= 0"),
    ("avoid_repetition", "maybe", "avoid_repetition must be true or false"),
])
def test_one_check_says_the_same_in_every_front_end(tmp_path: Path, key: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        DecodingSettings(**{key: value})
    config = tmp_path / "bot.yaml"
    config.write_text(yaml.safe_dump({"engine": {key: value}}))
    with pytest.raises(ConfigError, match=f"engine.{needle}"):
        load_config(config)
    lines: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    server = UciServer(out=Lines())  # type: ignore[arg-type]
    uci_name = {"temperature": "Temperature", "policy": "Policy", "top_k": "TopK", "threads": "Threads",
                "move_overhead_ms": "Move Overhead", "avoid_repetition": "AvoidRepetition"}[key]
    server.handle(f"setoption name {uci_name} value {value}")
    assert any(needle in line for line in lines), lines
    assert server.options.decoding == DEFAULTS  # the bad value was not taken


def test_model_spec_reads_the_settings_and_rejects_bad_ones(tiny_model: Path) -> None:
    player = make_player(f"model:path={tiny_model}", "tictactoe")
    assert isinstance(player, ModelPlayer) and player.settings == DEFAULTS
    warm = make_player(f"model:path={tiny_model},temperature=1,policy=raw,top_k=3", "tictactoe")
    assert isinstance(warm, ModelPlayer) and warm.settings == DecodingSettings(temperature=1.0, policy="raw", top_k=3)
    for bad in ("temperature=-1", "temperature=hot", "policy=greedy", "top_k=1.5", "seed=3"):
        with pytest.raises(PlayerSpecError, match="player 'model'"):
            make_player(f"model:path={tiny_model},{bad}", "tictactoe")


# --------------------------------------------------------------------------- specs as data
@pytest.mark.parametrize("spec", [
    PlayerSpec("random"),
    PlayerSpec("model", {"path": "runs/a,b/model", "temperature": "0.1"}),
    PlayerSpec("uci", {"cmd": 'engine "quoted" \\ path', "nodes": "5"}),
    PlayerSpec("model", {"path": " spaced "}),
])
def test_specs_survive_their_text(spec: PlayerSpec) -> None:
    assert PlayerSpec.parse(str(spec)) == spec


def test_spec_text_is_read_as_before_and_quotes_only_where_needed() -> None:
    assert PlayerSpec.parse("stockfish:skill=3, nodes=200") == PlayerSpec("stockfish", {"skill": "3", "nodes": "200"})
    assert str(PlayerSpec.parse("NS:noise=0.25")) == "newell-simon:noise=0.25"
    assert str(PlayerSpec("model", {"path": "a,b"})) == 'model:path="a,b"'
    assert str(with_noise("stockfish:nodes=10", 0.05)) == "stockfish:nodes=10,noise=0.05"
    assert str(with_noise("random:noise=0.5", 0.05)) == "random:noise=0.5"  # the spec's own noise wins
    for bad in ('model:path="open', 'model:path="a"b', "random:x", ":x=1"):
        with pytest.raises(PlayerSpecError):
            PlayerSpec.parse(bad)


def test_a_model_in_a_directory_with_a_comma_plays(tiny_model: Path, tmp_path: Path) -> None:
    odd = tmp_path / "runs, second try" / "model"
    shutil.copytree(tiny_model, odd)
    spec = PlayerSpec("model", {"path": odd, "temperature": 0})
    player = make_player(str(spec), "tictactoe")
    assert isinstance(player, ModelPlayer) and player.temperature == 0
