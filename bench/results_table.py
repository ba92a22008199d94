#!/usr/bin/env python3
"""Prints a `tmath profile --json` file as one Markdown table (a row per case,
the native reference and the Python reference side by side).

usage: results_table.py PROFILE.json
"""
import json
import sys


def fmt(v):
    if v is None:
        return "-"
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def main():
    d = json.load(open(sys.argv[1]))
    rows = {}
    for r in d["results"]:
        key = (r["op"], r["shape"], r["dtype"], r["backend"])
        row = rows.setdefault(key, {"ms": r["ms"]})
        if r["reference"] in ("numpy", "torch"):
            row["py"], row["py_ms"] = r["reference"], r["reference_ms"]
        else:
            row["ref"], row["ref_ms"] = r["reference"], r["reference_ms"]
    print("| op | shape | dtype | backend | engine ms | native reference | ref ms | engine / ref "
          "| Python ref | Python ms | engine / Python |")
    print("| --- | --- | --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |")
    for (op, shape, dtype, be), r in rows.items():
        ratio = lambda k: f"{r['ms'] / r[k]:.2f}" if r.get(k) else "-"
        print(f"| {op} | {shape} | {dtype} | {be} | {fmt(r['ms'])} | {r.get('ref', '-')} | "
              f"{fmt(r.get('ref_ms'))} | {ratio('ref_ms')} | {r.get('py', '-')} | "
              f"{fmt(r.get('py_ms'))} | {ratio('py_ms')} |")


if __name__ == "__main__":
    main()
