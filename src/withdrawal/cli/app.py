"""The Typer application object shared by the command modules."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from withdrawal.errors import WithdrawalError

app = typer.Typer(
    name="withdrawal",
    help=(
        "Decision support on tramadol and opioid withdrawal for clinicians: "
        "scales, safety screen, management plan, PK simulation and evidence."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True)


def fail(exc: WithdrawalError, code: int = 2) -> typer.Exit:
    """Print a domain error for a person and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except WithdrawalError as exc:  # last resort: commands normally handle their own
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
