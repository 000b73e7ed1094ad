"""The report as tables on a terminal, for people: rates with their count and interval, and a rate
from too few cases said to be so rather than printed as if it meant something."""

from __future__ import annotations

from outreach.analytics.model import Report

TOO_FEW = "too few to read"


def rate_text(successes: int, cases: int, low: float, high: float, min_cases: int) -> str:
    """'31.2% (5 of 16, 95%: 14-56%)', or 'too few to read (5 of 16)' under `min_cases` cases."""
    if cases < min_cases:
        return f"{TOO_FEW} ({successes} of {cases})"
    return f"{successes / cases:.1%} ({successes} of {cases}, 95%: {low:.0%}-{high:.0%})"


def rule_label(rule: str) -> str:
    """'playbook:aware' -> 'aware playbook', 'trigger:pricing' -> 'trigger pricing'."""
    kind, _, name = rule.partition(":")
    return f"{name} playbook" if kind == "playbook" else f"{kind} {name}".strip()


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(head), *(line(r) for r in rows)]


def render(r: Report, min_cases: int, owner: str | None, narrowed: str = "") -> str:
    p = r["period"]
    out = [f"Report {p['since']} to {p['until']} (UTC days)" + (f", contacts owned by {owner}" if owner else "")
           + (f"; only {narrowed}" if narrowed else ""), ""]
    out.append("Buying funnel at the end of the period:")
    out += _table(["stage", "there now", "reached"],
                  [[f["stage"], str(f["now"]), str(f["reached"])] for f in r["funnel"]])
    out += ["", "Conversion (of those who entered a stage in the period, how many moved on by its end):"]
    out += _table(["from", "to", "moved on"], [[c["from"], c["to"], rate_text(c["advanced"], c["entered"], c["low"],
                                                                              c["high"], min_cases)]
                                              for c in r["conversion"]])
    out += ["", "Days in each stage (contacts who left it in the period):"]
    out += _table(["stage", "left", "median days", "80% left within"],
                  [[v["stage"], str(v["n"]), "-" if v["median_days"] is None else f"{v['median_days']:g}",
                    "-" if v["p80_days"] is None else f"{v['p80_days']:g}"] for v in r["velocity"]])
    out += ["", "Results per step (touches sent in the period):"]
    if r["steps"]:
        out += _table(["rule", "step", "sent", "answered", "moved on", "opted out", "expired"],
                      [[rule_label(s["rule"]), s["step"], str(s["sent"]), str(s["responses"]), str(s["advanced"]),
                        str(s["opt_outs"]), str(s["expired"])] for s in r["steps"]])
    else:
        out.append("  nothing sent or expired in the period")
    out += ["", "Answered, per interaction type and channel:"]
    if r["channels"]:
        out += _table(["interaction", "channel", "answered"],
                      [[c["interaction"], c["channel"], rate_text(c["responses"], c["sent"], c["low"], c["high"],
                                                                  min_cases)] for c in r["channels"]])
    else:
        out.append("  nothing sent in the period")
    out += ["", "Approval queue per owner:"]
    if r["queue"]:
        out += _table(["owner", "waiting now", "expired unapproved"],
                      [[q["owner"] or "(no owner)", str(q["waiting"]), str(q["expired"])] for q in r["queue"]])
    else:
        out.append("  nothing waiting, nothing expired unapproved")
    return "\n".join(out)
