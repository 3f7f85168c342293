"""The meta-SAE groups SAE latents whose decoder directions share a component: on planted directions (four
components, each latent one of them plus noise) its groups are pure; bad input is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.errors import UserError
from gamegpt.interp.meta_sae import run_meta_sae
from gamegpt.interp.sae import SAE, SAEConfig, save_sae


def planted_sae(folder: Path, latents: int = 40, width: int = 16, components: int = 4) -> Path:
    generator = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(width, components, generator=generator))[0].T  # orthonormal rows
    rows = basis[torch.arange(latents) % components] + 0.1 * torch.randn(latents, width, generator=generator)
    sae = SAE(SAEConfig(width=width, latents=latents, steps=1))
    with torch.no_grad():
        sae.W_dec.copy_(rows / rows.norm(dim=1, keepdim=True))
    save_sae(sae, None, 1, folder, {"site": {"kind": "mlp", "layer": 1}})
    report = {"latents": [{"latent": i, "best_feature": f"X@{i % components}", "f1": 0.9} for i in range(latents)]}
    (folder / "sae-report.json").write_text(json.dumps(report))
    return folder


def test_meta_latents_group_latents_of_one_component(tmp_path: Path) -> None:
    sae_dir = planted_sae(tmp_path / "sae")
    report = run_meta_sae(sae_dir, tmp_path / "meta", meta_latents=4, k=1, steps=1500)
    assert report["purity"]["same_square"] > 0.95  # each group: the latents of one planted component
    assert report["purity_random_groups"]["same_square"] < 0.7  # random groups of the same sizes are mixed
    assert report["metrics"]["variance_explained"] > 0.75  # the planted noise (norm ~0.4 of 1) is left over
    assert sum(len(g["members"]) for g in report["groups"]) == 40  # k=1: every latent in exactly one group
    assert (tmp_path / "meta" / "meta-sae-groups.png").stat().st_size > 0
    again = run_meta_sae(sae_dir, tmp_path / "meta", meta_latents=4, k=1, steps=1500)  # continues: nothing to train
    assert again["groups"] == report["groups"]


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    sae_dir = planted_sae(tmp_path / "sae")
    with pytest.raises(UserError, match="k must be in 1..4"):
        run_meta_sae(sae_dir, tmp_path / "meta", meta_latents=4, k=5)
    (sae_dir / "sae-report.json").write_text("{not json")
    with pytest.raises(UserError, match="corrupt"):
        run_meta_sae(sae_dir, tmp_path / "meta", meta_latents=4, k=1)
    result = CliRunner().invoke(main, ["sae", "meta", str(tmp_path / "nothing-here")])
    assert result.exit_code == 2 and "no SAE in" in result.output and "Traceback" not in result.output
