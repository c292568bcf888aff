"""The one Jinja2 environment every report page is rendered with, and its number filters.

Autoescaping is on for every template (student names, check messages and tracebacks are
untrusted text), undefined variables are errors, and pages are written atomically with
``\\n`` line endings so that the same input always gives byte-identical files.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from autograder.errors import AutograderError

STATUS_LABELS: dict[str, str] = {
    "ok": "выполнен без ошибок",
    "cell-error": "ошибка в ячейке",
    "timeout": "превышено время выполнения",
    "memory-limit": "превышен лимит памяти",
    "process-limit": "превышен лимит процессов",
    "disk-limit": "превышен лимит диска",
    "output-limit": "слишком большой вывод ячейки",
    "killed": "ядро остановлено",
    "harvest-failed": "не удалось собрать результаты",
    "invalid-notebook": "файл не является корректным ноутбуком",
}


def fmt_points(value: float | None) -> str:
    """Points with at most two decimals and no trailing zeros: ``16``, ``13.6``, ``1.33``."""
    if value is None:
        return "—"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_measure(value: float | None) -> str:
    """A measured quantity with four significant digits: ``0.9877``, ``3.281e-05``."""
    if value is None:
        return "—"
    return f"{value:.4g}"


def fmt_seconds(value: float) -> str:
    """A duration: ``71.0 с`` below a minute, ``15 мин 25 с`` above."""
    if value < 59.95:  # what would print as "60.0 с" reads better as "1 мин 00 с"
        return f"{value:.1f} с"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} мин {seconds:02d} с"


def fmt_when(value: str | None) -> str:
    """An ISO timestamp from the results as ``18.12.2026 23:59 (UTC+03:00)``; text that is
    not one is shown as it is, a missing one as ``—``."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    text = moment.strftime("%d.%m.%Y %H:%M")
    offset = moment.utcoffset()
    if offset is None:
        return text
    minutes = round(offset.total_seconds() / 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{text} (UTC{sign}{hours:02d}:{rest:02d})"


def fmt_percent(value: float) -> str:
    """A share in ``[0, 1]`` as a whole percent: ``67%``."""
    return f"{round(value * 100)}%"


def plural(count: int, one: str, few: str, many: str) -> str:
    """The Russian form of a counted noun phrase: ``1 проверка``, ``2 проверки``, ``5 проверок``."""
    tail = count % 100
    if 11 <= tail <= 14:
        form = many
    elif tail % 10 == 1:
        form = one
    elif 2 <= tail % 10 <= 4:
        form = few
    else:
        form = many
    return f"{count} {form}"


def points_phrase(value: float) -> str:
    """Points with their noun: ``1 балл``, ``3 балла``, ``5 баллов``, ``1.5 балла``."""
    if value == int(value):
        return plural(int(value), "балл", "балла", "баллов")
    return f"{fmt_points(value)} балла"


def status_label(status: str) -> str:
    """A Russian description of a run status (the status itself when unknown)."""
    return STATUS_LABELS.get(status, status)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment: package templates, autoescape on, strict undefined."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("autograder.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        points=fmt_points,
        measure=fmt_measure,
        seconds=fmt_seconds,
        percent=fmt_percent,
        when=fmt_when,
        status_label=status_label,
    )
    env.globals["plural"] = plural
    env.filters["points_phrase"] = points_phrase
    return env


def render_page(template: str, out: Path, **context: Any) -> Path:
    """Render ``template`` with ``context`` and write it to ``out`` atomically."""
    try:
        text = environment().get_template(template).render(**context)
    except jinja2.TemplateError as err:
        raise AutograderError(f"report template {template}: {err}") from err
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    tmp.replace(out)
    return out
