"""Markdown table of one or more `bench_models.py --json` files (what benchmarks/README.md shows).

    python benchmarks/render_table.py benchmarks/results/base_eager.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def clock_cells(comparison: dict) -> list[str]:
    stock, sepnorm, paired = comparison["stock"], comparison["sepnorm"], comparison["paired_ratio"]
    return [
        f"{stock['median_s']:.3f} / {sepnorm['median_s']:.3f}",
        f"**{comparison['ratio']:.3f}** ({paired['min']:.3f}–{paired['max']:.3f})",
    ]


def memory_cells(row: dict) -> list[str]:
    memory = row.get("memory")
    if memory is None:
        return ["–"] * 2
    stock, sepnorm = memory["stock"], memory["sepnorm"]
    return [
        f"{stock['peak_rss_mb']:.0f} / {sepnorm['peak_rss_mb']:.0f} (**{memory['peak_rss_ratio']:.3f}**)",
        f"{stock['step_peak_mb']:.0f} / {sepnorm['step_peak_mb']:.0f} ({memory['step_peak_ratio']:.3f})",
    ]


def compile_cell(row: dict) -> str:
    if not row["compiled"]:
        return "eager"
    breaks = [row.get(f"{variant}_compile", {}).get("graph_break_count") for variant in ("stock", "sepnorm")]
    return f"compiled (graph breaks {breaks[0]}/{breaks[1]})"


def render_row(row: dict) -> str:
    key = [row["model"], row["shape"], row["mode"], row["dtype"], compile_cell(row)]
    if "error" in row:
        return "| " + " | ".join(key + [f"ERROR: {row['error']}"] + [""] * 6) + " |"
    cells = [*clock_cells(row["wall"]), *clock_cells(row["cpu"]), f"{row['loadavg_1min']:.1f}", *memory_cells(row)]
    return "| " + " | ".join(key + cells) + " |"


HEADER = (
    "| model | shape | mode | dtype | run | wall s/step stock / SepNorm (medians) | wall ratio (per-round min–max) "
    "| CPU s/step stock / SepNorm | CPU ratio (per-round min–max) | load | peak RSS MB stock / SepNorm (ratio) "
    "| step peak MB stock / SepNorm (ratio) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    print(HEADER)
    for path in args.files:
        for row in json.loads(path.read_text())["results"]:
            print(render_row(row))


if __name__ == "__main__":
    main()
