"""The seller console's pages: Jinja2 templates with autoescaping (every
platform-supplied string is escaped), one message catalog per language, and
the filters that show money in yuan, times in Asia/Shanghai and deadlines as
countdowns."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.domain.model import LANGUAGES, SHANGHAI

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).parent
STATIC = HERE / "static"


@cache
def catalog(language: str) -> dict[str, str]:
    """English source text -> its text in `language` (for English, only the wire
    values that read better spelled out)."""
    import tomllib  # on a page's first render, not at a webhook's cold start

    return tomllib.loads((HERE / "messages" / f"{language}.toml").read_text(encoding="utf-8"))


def yuan(fen: int | None) -> str:
    """Integer fen as yuan: 19900 -> ¥199.00."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def local_time(moment: datetime | str | None) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _span(seconds: float, translate: Any) -> str:
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return translate("%(days)s d %(hours)s h") % {"days": days, "hours": hours}
    if hours:
        return translate("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
    return translate("%(minutes)s min") % {"minutes": minutes}


@cache
def environment(language: str) -> Environment:
    if language not in LANGUAGES:
        raise ValueError(f"no console language {language!r}")
    # Imported on first use: only the console's pages need it, not a webhook's cold start.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations = catalog(language)

    # Messages use %(name)s placeholders, which Jinja's newstyle gettext fills
    # (escaping the values).
    def gettext(text: str) -> str:
        return translations.get(text, text)

    def ngettext(singular: str, plural: str, count: int) -> str:
        return gettext(singular if count == 1 else plural)

    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]

    def countdown(due_at: datetime | str, now: datetime) -> str:
        if isinstance(due_at, str):
            due_at = datetime.fromisoformat(due_at)
        left = (due_at - now).total_seconds()
        if left >= 0:
            return gettext("in %(span)s") % {"span": _span(left, gettext)}
        return gettext("%(span)s overdue") % {"span": _span(-left, gettext)}

    env.filters.update(yuan=yuan, local_time=local_time, countdown=countdown)
    env.globals["language"] = language
    return env


def render(template: str, language: str, **context: Any) -> str:
    return environment(language).get_template(template).render(**context)
