"""The Jinja2 environment of the site: templates under ``templates/``, autoescaping always on,
and an undefined name in a template is an error, never an empty string."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from harness.leaderboard.tables import MISSING, PARTIAL_MARK, TIE_MARK

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> jinja2.Environment:
    """The one environment: every ``{{ value }}`` is HTML-escaped unless it is ``Markup``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals.update(MISSING=MISSING, PARTIAL_MARK=PARTIAL_MARK, TIE_MARK=TIE_MARK)
    return env


def render(template: str, **context: Any) -> str:
    """The text of ``template`` filled with ``context``."""
    return environment().get_template(template).render(**context)
