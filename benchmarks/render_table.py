"""Markdown tables of `bench_models.py --json` files, or of `memory_probe.py` lines collected in a .jsonl file
(what benchmarks/README.md shows).

    python benchmarks/render_table.py benchmarks/results/base_eager_bert.json
    python benchmarks/render_table.py benchmarks/results/base_memory_mmap_threshold.jsonl
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


MEMORY_HEADER = (
    "| model | mode | dtype | peak RSS MB stock / SepNorm | peak ratio | step peak MB stock / SepNorm | step-peak ratio |\n"
    "|---|---|---|---|---|---|---|"
)


def render_memory_lines(path: Path) -> None:
    """One row per (model, mode, dtype) of probe lines {model, mode, dtype, variant, probe: memory_probe output}."""
    rows: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        rows.setdefault((entry["model"], entry["mode"], entry["dtype"]), {})[entry["variant"]] = entry["probe"]
    print(MEMORY_HEADER)
    for key, probes in rows.items():
        if set(probes) != {"stock", "sepnorm"}:
            continue
        stock, sepnorm = probes["stock"], probes["sepnorm"]
        cells = [
            f"{stock['peak_rss_mb']:.0f} / {sepnorm['peak_rss_mb']:.0f}",
            f"**{sepnorm['peak_rss_mb'] / stock['peak_rss_mb']:.4f}**",
            f"{stock['step_peak_mb']:.0f} / {sepnorm['step_peak_mb']:.0f}",
            f"{sepnorm['step_peak_mb'] / stock['step_peak_mb']:.4f}",
        ]
        print("| " + " | ".join([*key, *cells]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    memory_files = [path for path in args.files if path.suffix == ".jsonl"]
    result_files = [path for path in args.files if path.suffix != ".jsonl"]
    if result_files:
        print(HEADER)
    for path in result_files:
        for row in json.loads(path.read_text())["results"]:
            print(render_row(row))
    for path in memory_files:
        render_memory_lines(path)


if __name__ == "__main__":
    main()
