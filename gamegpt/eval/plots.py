"""Plot helpers shared by the evaluations: a headless matplotlib and atomic PNG writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gamegpt.atomic import atomic_path


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write `fig` as PNG to a temp file beside `path`, rename it into place, and close the figure."""
    path = Path(path)
    with atomic_path(path) as tmp:  # the temp name keeps the suffix, from which savefig takes the format
        fig.tight_layout()
        fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
    return path
