"""The one Jinja2 environment, and the templates it finds by naming convention.

Layout: ``emails/{name}-subject.txt``, ``emails/{name}-body.txt``, ``emails/{name}-body.html``;
``report/report.{txt,md,html}``; ``forms/`` and ``dashboard/`` for the web app.
Autoescape is on for every template except plain text (``.txt``) and Markdown (``.md``),
where HTML escaping would corrupt the output; Markdown output escapes raw HTML itself.
StrictUndefined: a missing variable is an error, never an empty string in a sent mail.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(
            disabled_extensions=("txt", "md"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["possessive"] = possessive
    return env


def possessive(name: str) -> str:
    """ "MBIE's", but "Department of Internal Affairs'": a name ending in a plural word takes
    the apostrophe alone, as New Zealand government style writes it ("Affairs's" reads as a
    typo). An acronym ending in a capital S keeps 's (it is said as a letter)."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
