#!/usr/bin/env python3
"""Joins Mdm's and PyTorch's benchmark JSON lines on (op, shape) and prints one markdown table.

ratio = PyTorch time / Mdm time, so > 1 means Mdm is faster. TFLOP/s = flops / time (formulas in BenchCases.cs). % of copy = achieved GB/s over the measured
device-to-device copy bandwidth of the same implementation (the 'copy' case).
"""
import json
import sys


def load(path):
    rows = {}
    try:
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    rows[(r["op"], r["shape"])] = r
    except FileNotFoundError:
        pass
    return rows


def main(argv):
    if len(argv) != 2:
        print("usage: compare.py MDM.json TORCH.json", file=sys.stderr)
        return 2
    ours, theirs = load(argv[0]), load(argv[1])
    if not ours:
        print(f"compare: no Mdm results in {argv[0]}", file=sys.stderr)
        return 1
    copy_bw = next((r["gbps"] for (op, _), r in ours.items() if op == "copy"), None)
    card = next(iter(ours.values()))["card"]
    print(f"card: {card}")
    print()
    print("| op | shape | Mdm ms | PyTorch ms | ratio (torch/mdm) | Mdm GB/s | % of copy BW | Mdm TFLOP/s | PyTorch TFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, r in ours.items():
        t = theirs.get(key)
        tms = f"{t['ms']:.4f}" if t else "n/a"
        ratio = f"{t['ms'] / r['ms']:.2f}x" if t and r["ms"] > 0 else "n/a"
        pct = f"{100 * r['gbps'] / copy_bw:.0f}%" if copy_bw else "n/a"
        tf = f"{r['tflops']:.2f}" if r.get("flops") else "-"
        ttf = f"{t['tflops']:.2f}" if t and t.get("flops") else "-"
        print(f"| {key[0]} | {key[1]} | {r['ms']:.4f} | {tms} | {ratio} | {r['gbps']:.1f} | {pct} | {tf} | {ttf} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
