"""The portal's own pages (login, queue, task chrome, audit index and errors), rendered from Liquid templates.

Every value is autoescaped: reviewer names, execution names, labels and error messages are attacker-controlled.
The reviewer task itself is rendered from ``ui/`` by the A2I worker-template environment in ``app.py``.
"""

from __future__ import annotations

from pathlib import Path

from liquid import CachingFileSystemLoader, Environment
from liquid.extra import BlockTag, ExtendsTag
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).with_name("templates")


def pages_environment() -> Environment:
    """``templates/*.liquid.html``, every value autoescaped, layouts by ``extends`` (python-liquid's extra tags)."""
    env = Environment(autoescape=True, loader=CachingFileSystemLoader(TEMPLATES))
    env.add_tag(ExtendsTag)
    env.add_tag(BlockTag)
    return env


PAGES = pages_environment()


def render_page(template: str, status_code: int = 200, **data: object) -> HTMLResponse:
    """A page of ``templates/``: ``data`` are values, escaped by the template (only ``Markup`` is not)."""
    return HTMLResponse(PAGES.get_template(template).render(**data), status_code=status_code)
