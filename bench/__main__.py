"""Run every row, print the table, write bench/RESULTS.md. Exit 1 if a row could not be measured."""

from __future__ import annotations

import argparse
import inspect
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from bench import (
    RESULTS,
    Row,
    build_size,
    burst,
    cold_start,
    kserve_compare,
    machine,
    model_load,
    redeploy_cost,
    rollout_budget,
    server_load,
    server_overhead,
    signing,
)

TITLES = {
    "1": (cold_start, "cold start"),
    "2": (redeploy_cost, "redeploy cost"),
    "3": (burst, "burst"),
    "4": (rollout_budget, "rollout budget"),
    "5": (build_size, "build size"),
    "6": (server_load, "model server load"),
    "7": (model_load, "model loading"),
    "8": (signing, "model signing"),
    "9": (server_overhead, "model server overhead, real scikit-learn pipeline"),
    "10": (kserve_compare, "model server beside KServe: concurrency, slow clients"),
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=11, help="fresh interpreters per cold-start variant (median)")
    parser.add_argument("--redeploys", type=int, default=20, help="redeploys per side in row 2 (median)")
    parser.add_argument("--events", type=int, default=1000, help="S3 events in the burst")
    parser.add_argument("--uploads", type=int, default=20, help="uploads interleaved with the burst")
    parser.add_argument("--load-seconds", type=float, default=3.0, help="measured seconds per load run in row 6")
    parser.add_argument("--load-clients", default="1,8,32", help="keep-alive client counts in row 6")
    parser.add_argument("--memory-mib", type=int, default=100, help="model size for row 6's memory line")
    parser.add_argument("--model-mib", type=int, default=200, help="model size for rows 7 and 8")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8,9,10", help="comma-separated rows to run, e.g. 1,4")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="markdown file to write (default bench/RESULTS.md)"
    )
    return parser.parse_args(argv)


def failed(number: str, exc: BaseException) -> Row:
    return Row(number, TITLES[number][1], "not measured", "", "n/a", f"{type(exc).__name__}: {exc}")


def attempt(number: str, call: Callable[[], tuple[list[Row], dict]], out=print) -> tuple[list[Row], bool]:
    started = time.perf_counter()
    out(f"  row {number} ({TITLES[number][1]}) ...")
    try:
        rows, _ = call()
    except Exception as exc:  # a row that cannot be measured says why, in the table
        traceback.print_exc(file=sys.stderr)
        return [failed(number, exc)], False
    out(f"  row {number} done in {time.perf_counter() - started:.1f} s")
    return rows, all(row.aurelius != "not measured" and "not measured" not in row.compared_with for row in rows)


def table(rows: list[Row]) -> str:
    lines = [
        "| # | measure | aurelius | compared with | ratio (aurelius ÷ compared) | notes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [row.number, row.measure, row.aurelius, row.compared_with, row.ratio, row.notes]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def method(module: ModuleType) -> str:
    return inspect.cleandoc(module.__doc__ or "").strip()


def render(rows: list[Row], machine_info: dict[str, str], selected: list[str], seconds: float) -> str:
    parts = [
        "# aurelius: measured numbers",
        "",
        f"Written by `make bench` (`python -m bench`) on {machine_info['date']}, in {seconds:.0f} s. Every row was "
        "measured in that one run, on this machine, against a moto server on 127.0.0.1 (no AWS account, "
        "no network). Re-run `make bench` to refresh; the numbers are this machine's, not AWS's.",
        "",
        "Machine:",
        "",
        f"- CPU: {machine_info['cpu']}",
        f"- memory: {machine_info['memory']}",
        f"- OS: {machine_info['os']}",
        f"- Python: {machine_info['python']}",
        f"- tools: {machine_info['tools']}",
        "",
        table(rows),
        "",
        "## How each row is measured",
        "",
    ]
    for number in selected:
        module, title = TITLES[number]
        parts += [f"### {number}. {title} (`bench/{Path(module.__file__).name}`)", "", method(module), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    selected = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in selected if n not in TITLES]
    if unknown:
        print(f"unknown rows {unknown}; rows are {', '.join(TITLES)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print("aurelius bench: every row on this machine, against 127.0.0.1")
    results: dict[str, list[Row]] = {}
    ok = True

    def record(number: str, call: Callable[[], tuple[list[Row], dict]]) -> None:
        nonlocal ok
        rows, fine = attempt(number, call)
        results[number] = rows
        ok = ok and fine

    # Cold starts first, before the moto server's threads share the CPU.
    if "1" in selected:
        record("1", lambda: cold_start.run(runs=args.runs))
    if "4" in selected:
        record("4", rollout_budget.run)
    if "6" in selected:
        record(
            "6",
            lambda: server_load.run(
                load_seconds=args.load_seconds,
                memory_mib=args.memory_mib,
                clients=tuple(int(n) for n in args.load_clients.split(",")),
            ),
        )
    if "7" in selected:
        record("7", lambda: model_load.run(model_mib=args.model_mib))
    if "8" in selected:
        record("8", lambda: signing.run(model_mib=args.model_mib))
    if "9" in selected:
        record("9", server_overhead.run)
    if "10" in selected:
        record("10", lambda: kserve_compare.run(load_seconds=args.load_seconds))
    if "2" in selected or "3" in selected:
        from bench.sandbox import sandbox

        try:
            with sandbox() as box:
                if "2" in selected:
                    record("2", lambda: redeploy_cost.run(box, redeploys=args.redeploys))
                if "3" in selected:
                    record("3", lambda: burst.run(box, events=args.events, uploads=args.uploads))
        except Exception as exc:  # the sandbox itself failed
            traceback.print_exc(file=sys.stderr)
            for number in ("2", "3"):
                if number in selected and number not in results:
                    results[number] = [failed(number, exc)]
            ok = False
    if "5" in selected:
        record("5", build_size.run)

    rows = [row for number in sorted(results, key=int) for row in results[number]]
    text = render(rows, machine.describe(), sorted(selected, key=int), time.perf_counter() - started)
    args.output.write_text(text + "\n", encoding="utf-8")
    print()
    print(text.split("## How each row is measured")[0].rstrip())
    print(f"\nwritten to {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
