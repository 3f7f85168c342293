"""Karvonen's nanoGPT checkpoints (ckpt.pt + meta.pkl), written here in his exact layout, loaded safely."""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from gamegpt.core.foreign import find_nanogpt_checkpoint, load_nanogpt_checkpoint
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.errors import UserError
from gamegpt.games.chess_codecs import PGN_VOCABULARY, PgnCharCodec
from gamegpt.resources import shipped_models_dir


class ShellPayload:
    """Unpickling this runs `touch marker` (when the unpickler lets it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch '{self.marker}'",))


def karvonen_meta() -> dict[str, Any]:
    return {"vocab_size": 32, "itos": dict(enumerate(PGN_VOCABULARY)),
            "stoi": {char: index for index, char in enumerate(PGN_VOCABULARY)}}


def write_nanogpt(directory: Path, *, bias: bool = False, seed: int = 0, old_mask: bool = False,
                  meta: Any = None) -> tuple[GPT, Path, Path]:
    """A random GPT saved as nanoGPT's train.py does (torch.compile prefixes, tensor best_val_loss)."""
    torch.manual_seed(seed)
    args = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 64, "bias": bias, "vocab_size": 32, "dropout": 0.0}
    model = GPT(GPTConfig(**args))
    with torch.no_grad():  # make biases and LayerNorm weights non-trivial, so a mix-up shows in the logits
        for name, param in model.named_parameters():
            if not name.endswith(".weight") or ".ln_" in name or "ln_f" in name:
                param.add_(0.1 * torch.randn_like(param))
    state = {f"_orig_mod.{name}": tensor for name, tensor in model.state_dict().items()}
    if old_mask:  # nanoGPT without flash attention saved its causal mask as a buffer
        for layer in range(args["n_layer"]):
            state[f"_orig_mod.transformer.h.{layer}.attn.bias"] = torch.tril(torch.ones(64, 64)).view(1, 1, 64, 64)
    directory.mkdir(parents=True, exist_ok=True)
    ckpt, meta_path = directory / "ckpt.pt", directory / "meta.pkl"
    torch.save({"model": state, "model_args": args, "iter_num": 5, "best_val_loss": torch.tensor(1.23),
                "config": {"dataset": "lichess_hf_dataset", "learning_rate": 3e-4, "compile": True}}, ckpt)
    with open(meta_path, "wb") as f:
        pickle.dump(karvonen_meta() if meta is None else meta, f)
    return model, ckpt, meta_path


def nanogpt_logits(state: dict[str, torch.Tensor], n_head: int, idx: torch.Tensor) -> torch.Tensor:
    """nanoGPT's forward pass (manual masked attention), written from its model.py, on a raw state dict."""
    sd = {k.removeprefix("_orig_mod."): v for k, v in state.items()}

    def ln(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), sd[f"{name}.weight"], sd.get(f"{name}.bias"), 1e-5)

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"))

    B, T = idx.shape
    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]
    C = x.shape[-1]
    layer = 0
    while f"transformer.h.{layer}.ln_1.weight" in sd:
        h = f"transformer.h.{layer}"
        q, k, v = linear(ln(x, f"{h}.ln_1"), f"{h}.attn.c_attn").split(C, dim=2)
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // n_head)
        att = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + linear(y, f"{h}.attn.c_proj")
        x = x + linear(F.gelu(linear(ln(x, f"{h}.ln_2"), f"{h}.mlp.c_fc")), f"{h}.mlp.c_proj")
        layer += 1
    return F.linear(ln(x, "transformer.ln_f"), sd["lm_head.weight"])


def assert_one_line_error(error: pytest.ExceptionInfo[UserError], path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message


@pytest.mark.parametrize("bias, old_mask", [(False, True), (True, False)])
def test_loads_karvonen_layout_with_same_logits(tmp_path: Path, bias: bool, old_mask: bool) -> None:
    original, ckpt, meta_path = write_nanogpt(tmp_path / "run", bias=bias, old_mask=old_mask)
    assert find_nanogpt_checkpoint(tmp_path / "run") == (ckpt, meta_path)
    assert find_nanogpt_checkpoint(ckpt) == (ckpt, meta_path)

    model, codec, meta = load_nanogpt_checkpoint(ckpt, meta_path)
    assert codec == PgnCharCodec().spec()
    assert meta["format"] == "nanogpt" and meta["source"] == str(ckpt)
    assert meta["iter_num"] == 5 and isinstance(meta["iter_num"], int)
    assert meta["best_val_loss"] == pytest.approx(1.23) and isinstance(meta["best_val_loss"], float)
    assert model.config.bias is bias and not model.training
    assert model.lm_head.weight is model.transformer.wte.weight

    idx = torch.tensor([PgnCharCodec.text_to_tokens(";1.e4 e5 2.Nf3 Nc6 3.Bb5 a6 4.Ba4 Nf6 5.O-O Be7")])
    original.eval()
    with torch.no_grad():
        logits, _ = model(idx, all_positions=True)
        expected, _ = original(idx, all_positions=True)
        reference = nanogpt_logits(torch.load(ckpt, weights_only=True)["model"], 2, idx)
    assert torch.equal(logits, expected)
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)


def test_malicious_meta_pkl_never_runs(tmp_path: Path) -> None:
    # The payload works: a plain pickle.load runs it.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(ShellPayload(probe)))
    assert probe.exists()

    marker = tmp_path / "pwned"
    _, ckpt, meta_path = write_nanogpt(tmp_path / "run", meta={**karvonen_meta(), "x": ShellPayload(marker)})
    with pytest.raises(UserError) as error:
        load_nanogpt_checkpoint(ckpt, meta_path)
    assert_one_line_error(error, meta_path)
    assert not marker.exists()


def test_ckpt_with_pickled_object_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _, ckpt, meta_path = write_nanogpt(tmp_path / "run")
    checkpoint = torch.load(ckpt, weights_only=True)
    torch.save({**checkpoint, "config": {"hook": ShellPayload(marker)}}, ckpt)
    with pytest.raises(UserError) as error:
        load_nanogpt_checkpoint(ckpt, meta_path)
    assert_one_line_error(error, ckpt)
    assert "os.system" in str(error.value) or "posix.system" in str(error.value)
    assert not marker.exists()


def test_truncated_ckpt(tmp_path: Path) -> None:
    _, ckpt, meta_path = write_nanogpt(tmp_path / "run")
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as error:
        load_nanogpt_checkpoint(ckpt, meta_path)
    assert_one_line_error(error, ckpt)


@pytest.mark.parametrize("change, expected", [
    (lambda m: m["itos"].update({1: "+", 2: "#"}), "itos[1] is '+', expected '#'"),
    (lambda m: m["stoi"].pop("x"), "stoi['x'] is absent, expected 31"),
    (lambda m: m.update(vocab_size=33), "vocab_size is 33"),
])
def test_wrong_vocabulary(tmp_path: Path, change: Any, expected: str) -> None:
    meta = karvonen_meta()
    change(meta)
    _, ckpt, meta_path = write_nanogpt(tmp_path / "run", meta=meta)
    with pytest.raises(UserError, match="not Karvonen's") as error:
        load_nanogpt_checkpoint(ckpt, meta_path)
    assert_one_line_error(error, meta_path)
    assert expected in str(error.value)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["model_args"].update(n_embd=64), "has shape"),
    (lambda c: c["model_args"].pop("n_head"), "model_args lacks n_head"),
    (lambda c: c["model"].pop("_orig_mod.transformer.ln_f.weight"), "missing ['transformer.ln_f.weight']"),
    (lambda c: c.pop("model_args"), "no 'model_args' dict"),
])
def test_malformed_checkpoint(tmp_path: Path, edit: Any, expected: str) -> None:
    _, ckpt, meta_path = write_nanogpt(tmp_path / "run")
    checkpoint = torch.load(ckpt, weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, ckpt)
    with pytest.raises(UserError) as error:
        load_nanogpt_checkpoint(ckpt, meta_path)
    assert_one_line_error(error, ckpt)
    assert expected in str(error.value)


def test_ckpt_not_a_dict(tmp_path: Path) -> None:
    _, ckpt, meta_path = write_nanogpt(tmp_path / "run")
    torch.save([torch.zeros(3)], ckpt)
    with pytest.raises(UserError, match="expected a dict") as error:
        load_nanogpt_checkpoint(ckpt, meta_path)
    assert_one_line_error(error, ckpt)


def test_find_nanogpt_checkpoint(tmp_path: Path) -> None:
    assert find_nanogpt_checkpoint(shipped_models_dir() / "tictactoe") is None
    assert find_nanogpt_checkpoint(shipped_models_dir() / "tictactoe" / "model.safetensors") is None
    assert find_nanogpt_checkpoint(tmp_path / "nothing-here.pt") is None

    _, ckpt, meta_path = write_nanogpt(tmp_path / "run")
    renamed = ckpt.with_name("lichess_8layers_ckpt_no_optimizer.pt")
    ckpt.rename(renamed)
    assert find_nanogpt_checkpoint(renamed) == (renamed, meta_path)
    with pytest.raises(UserError, match="name one of its .pt files"):
        find_nanogpt_checkpoint(tmp_path / "run")

    meta_path.unlink()
    with pytest.raises(UserError, match="without meta.pkl") as error:
        find_nanogpt_checkpoint(renamed)
    assert_one_line_error(error, renamed)
