"""Readable terminal summaries (the --json documents are the machine-readable form)."""

from __future__ import annotations

from collections import Counter


def print_vet_summary(result: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title=f"speaker {escape(result['speaker'])}", show_lines=False)
    for col in ("source", "start", "end", "status", "reasons", "text"):
        table.add_column(col, overflow="fold")
    for c in result["clips"]:
        style = "green" if c["status"] == "accepted" else "red"
        table.add_row(escape(c["source"]), f"{c['start_s']:.1f}", f"{c['end_s']:.1f}", f"[{style}]{c['status']}[/]",
                      ", ".join(c["reasons"]), escape((c["text"] or "")[:60]))
    console.print(table)
    e = result["enrollment"]
    counts = Counter(c["status"] for c in result["clips"])
    console.print(f"enrolment: [bold]{e['status']}[/]  accepted {e['accepted_s']:.1f} s in {counts['accepted']} clips, "
                  f"rejected {e['rejected_s']:.1f} s in {counts['rejected']} clips")
    for line in e["advice"]:
        console.print(f"  - {escape(line)}")
    for err in result.get("errors", []):
        console.print(f"[yellow]error[/]: {escape(err['error'])}")
    console.print(f"store: {result['store']}")
