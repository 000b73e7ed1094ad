"""The report as HTML: the widgets (a chart and its table each) that /dashboard shows, and the
self-contained page `outreach report --html` writes, with Chart.js and the drawing script inlined so
it opens with no network (it is meant to be mailed around)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from outreach.analytics.model import DeliverabilityRow, Report
from outreach.analytics.text import rule_label

_HERE = Path(__file__).parent
STATIC = _HERE.parent / "web" / "static"  # the script the dashboard serves is the one the page inlines
CHARTJS = STATIC / "vendor" / "chartjs" / "chart.umd.min.js"
CHARTS = STATIC / "charts.js"
_env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["rule_label"] = rule_label


WIDGETS = ("funnel", "conversion", "history", "velocity", "channels", "steps", "queue", "deliverability")


def widgets(report: Report, min_cases: int, advance_within: timedelta, csv: str | None = None,
            kept: dict[str, bool] | None = None, deliverability: list[DeliverabilityRow] | None = None,
            show: Sequence[str] = WIDGETS) -> Markup:
    """The widgets in `show` (every one by default), in its order: each a chart canvas and a table, and
    the report as JSON for charts.js to draw from.
    `csv`: the query string for each widget's CSV link on the dashboard (None: no links). `kept`: the
    history's days read from snapshots (True: reconstructed), to say how each day's counts were made."""
    return Markup(_env.get_template("widgets.html").render(
        r=report, min_cases=min_cases, csv=csv, kept=kept or {}, deliverability=deliverability or [],
        show=[w for w in show if w in WIDGETS],
        advance_days=f"{advance_within.total_seconds() / 86400:g}"))


def _script(path: Path) -> Markup:
    text = path.read_text(encoding="utf-8")
    # inside <script>, only "</script" could end it early: Chart.js has none, and this keeps it so
    return Markup(text.replace("</script", "<\\/script"))


def page(report: Report, min_cases: int, advance_within: timedelta, owner: str | None,
         kept: dict[str, bool] | None = None, deliverability: list[DeliverabilityRow] | None = None) -> str:
    return _env.get_template("report_page.html").render(
        r=report, owner=owner, min_cases=min_cases, made=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        widgets=widgets(report, min_cases, advance_within, kept=kept, deliverability=deliverability),
        chartjs=_script(CHARTJS), charts=_script(CHARTS))


def write_html(path: Path, report: Report, min_cases: int, advance_within: timedelta, owner: str | None,
               kept: dict[str, bool] | None = None, deliverability: list[DeliverabilityRow] | None = None) -> None:
    path.write_text(page(report, min_cases, advance_within, owner, kept, deliverability), encoding="utf-8")
