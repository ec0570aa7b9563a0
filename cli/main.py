"""``reportcycle``: one command line for the whole reporting cycle."""

from __future__ import annotations

import typer

from cli import (
    agency_commands,
    cycle_commands,
    demo,
    milestone_commands,
    ops_commands,
    plan_commands,
    review_commands,
)
from cli.common import console, load_settings

app = typer.Typer(
    name="reportcycle",
    help="Run the annual reporting cycle of a multi-agency plan of action.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def info() -> None:
    """Show where reportcycle keeps its data and what it is connected to."""
    settings = load_settings()
    from sqlalchemy import make_url

    console.print(f"mode:           {settings.mode.value}")
    console.print(f"data directory: {settings.data_dir}")
    console.print(
        "database:       " + make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
    )
    console.print(f"outbox:         {settings.outbox_path}")
    console.print(f"base URL:       {settings.base_url}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (every command also does this on start)."""
    from models.db import current_revision, get_engine, upgrade

    settings = load_settings()
    settings.ensure_data_dir()
    engine = get_engine(settings.sqlalchemy_url)
    upgrade(engine)
    console.print(f"database at revision {current_revision(engine)}")


plan_commands.register(app)
demo.register(app)
ops_commands.register(app)
cycle_commands.register(app)
agency_commands.register(app)
milestone_commands.register(app)
review_commands.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
