"""Readable terminal summaries (the --json documents are the machine-readable form)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from clonebench.curate.results import SourceError, VetResult
    from clonebench.evaluate.figures import Figure
    from clonebench.evaluate.result import EvaluationResult, RunListing


def print_vet_summary(result: VetResult, errors: Sequence[SourceError] | None = None) -> None:
    """One speaker's `VetResult`: clips, enrolment, warnings, then `errors` (the result's own by
    default; a --list run prints the list's errors after its last speaker)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from clonebench.curate.rules import FLAGS

    console = Console()
    table = Table(title=f"speaker {escape(result.speaker)}", show_lines=False)
    for col in ("source", "start", "end", "status", "reasons", "text"):
        table.add_column(col, overflow="fold")
    for c in result.clips:
        style = "green" if c.status == "accepted" else "red"
        flags = "".join(f" [yellow]check: {f}[/]" for f in c.flags)
        by = f" [blue]by {escape(c.reviewed_by)}[/]" if c.reviewed_by else ""
        table.add_row(escape(c.source), f"{c.start_s:.1f}", f"{c.end_s:.1f}", f"[{style}]{c.status}[/]{by}",
                      ", ".join(c.reasons) + flags, escape(c.text[:60]))
    console.print(table)
    e = result.enrollment
    counts = Counter(c.status for c in result.clips)
    console.print(f"enrolment: [bold]{e.status}[/]  accepted {e.accepted_s:.1f} s in {counts['accepted']} clips, "
                  f"rejected {e.rejected_s:.1f} s in {counts['rejected']} clips")
    for line in e.advice:
        console.print(f"  - {escape(line)}")
    flagged = Counter(f for c in result.clips for f in c.flags)
    for flag, n in sorted(flagged.items()):
        problem, check = FLAGS[flag]
        console.print(f"[yellow]to check[/]: {problem} in {n} accepted clip{'s' * (n != 1)}: {check}")
    reviewed = [c for c in result.clips if c.reviewed_by]
    if reviewed:
        console.print(f"{len(reviewed)} clip{'s' * (len(reviewed) != 1)} decided by a reviewer (their verdicts stand "
                      "over the rules'; `clonebench review` to see them)")
    for c in result.clips:
        if c.conflict:
            console.print(f"[yellow]in conflict[/]: {escape(c.clip_id)}: {escape(c.conflict)}")
    for warning in result.warnings:
        console.print(f"[yellow]warning[/]: {escape(warning)}")
    for err in result.errors if errors is None else errors:
        console.print(f"[yellow]error[/]: {escape(err.error)}")
    console.print(f"store: {result.store}")


_EVAL_COLUMNS = ["sim", "sim_o", "wer", "cer", "dnsmos_ovrl", "utmos", "rtf"]


def _ci(fig: Figure | None, pct: bool = False) -> str:
    if not fig:
        return "-"
    k = 100 if pct else 1
    if fig.lo != fig.lo:  # NaN: one unit, no interval
        return f"{fig.value * k:.3g}"
    return f"{fig.value * k:.3g} [{fig.lo * k:.3g}, {fig.hi * k:.3g}]"


def print_eval_summary(doc: EvaluationResult) -> None:
    """A finished run: figures, comparison, gate verdict, errors."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    shown = [m for m in _EVAL_COLUMNS if m in doc.overall]
    table = Table(title=f"eval run {doc.run_id}  (95 % bootstrap CIs; WER/CER in %, corpus level)")
    table.add_column("speaker")
    table.add_column("items", justify="right")
    for m in shown:
        table.add_column(m, justify="right")
    counts = Counter(r.speaker for r in doc.items if r.status != "error")
    for name, figs in [*doc.speakers.items(), ("overall", doc.overall)]:
        n = sum(counts.values()) if name == "overall" else counts[name]
        table.add_row(escape(name), str(n), *[_ci(figs.get(m), m in ("wer", "cer")) for m in shown])
    console.print(table)
    cmp = doc.comparison
    if cmp:
        t = Table(title=f"against baseline {cmp.baseline_run}: new - baseline on {cmp.paired_items} paired items")
        t.add_column("scope")
        for m in shown:
            t.add_column(m, justify="right")
        colour = {"better": "green", "worse": "red", "no_significant_change": "dim"}
        for name, figs in [*cmp.speakers.items(), ("overall", cmp.overall)]:
            cells = []
            for m in shown:
                f = figs.get(m)
                cells.append("-" if not f else f"[{colour[f.verdict]}]{_ci(f, m in ('wer', 'cer'))}[/]")
            t.add_row(escape(name), *cells)
        console.print(t)
        for m, why in cmp.not_compared.items():
            console.print(f"  not compared: {m}: {escape(why)}")
    g = doc.gate
    if g:
        state = "[green]passed[/]" if g.passed else "[red bold]FAILED[/]"
        console.print(f"gate {', '.join(g.rules)} ({g.scope}): {state}")
        for f in g.failures:
            console.print(f"  {f.rule} {escape(f.scope)}: difference {f.delta:+.4f} [{f.lo:+.4f}, {f.hi:+.4f}]")
        for u in g.unchecked:
            console.print(f"  unchecked: {escape(u)}")
    bad = doc.errors
    for e in bad[:20]:
        console.print(f"[yellow]error[/]: {escape(e.error)}")
    if len(bad) > 20:
        console.print(f"... and {len(bad) - 20} more errors (see --json)")
    console.print(f"store: {doc.store}  run: {doc.run_id}")


def print_runs(rows: list[RunListing]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="evaluation runs, newest first")
    for col in ("run", "created", "status", "label", "items", "errors", "sim", "wer %", "dnsmos", "baseline", "gate"):
        table.add_column(col)
    for r in rows:
        o = r.overall
        table.add_row(r.run_id, r.created_at[:19], r.status, escape(r.label or ""), str(r.n_items or 0),
                      str(r.n_errors or 0), f"{o['sim']:.3f}" if "sim" in o else "-",
                      f"{o['wer'] * 100:.1f}" if "wer" in o else "-",
                      f"{o['dnsmos_ovrl']:.2f}" if "dnsmos_ovrl" in o else "-", r.baseline_run or "", r.gate or "")
    Console().print(table)
