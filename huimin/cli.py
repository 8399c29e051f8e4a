"""The ``huimin`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from huimin.settings import load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Huimin object store")


@app.command()
def server(
    data_dir: Annotated[Path, typer.Argument(help="data folder (drive folders live here)")] = Path(
        "./data"
    ),
    listen: Annotated[str | None, typer.Option(help="HOST:PORT to serve S3 on")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file")] = None,
    drives: Annotated[int | None, typer.Option(help="drive folders to lay out")] = None,
) -> None:
    """Run the embedded store: S3 gateway + drive folders under DATA_DIR, one process."""
    from huimin.server import run

    run(load_settings(config, data_dir=data_dir, listen=listen, drives=drives))


@app.command()
def version() -> None:
    """Print the version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("huimin"))


def main() -> None:
    app()
