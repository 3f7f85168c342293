"""Pieces shared by the click commands: user errors as one line and exit code 2, and spec helpers."""

from __future__ import annotations

from typing import Any

import click

from gamegpt.errors import UserError


class _UserErrorsExit2:
    """Turns a UserError into `error: <message>` on stderr and exit code 2, Ctrl-C into exit code 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


class Group(_UserErrorsExit2, click.Group):
    """A click group whose commands report user errors in one line (exit code 2)."""


class Command(_UserErrorsExit2, click.Command):
    """A click command that reports user errors in one line (exit code 2), also when run on its own."""


def with_noise(spec: str, noise: float | None) -> str:
    """`spec` with `noise=` added, unless `noise` is None or 0 or the spec has its own."""
    if not noise or "noise=" in spec:
        return spec
    return f"{spec}{',' if ':' in spec else ':'}noise={noise:g}"
