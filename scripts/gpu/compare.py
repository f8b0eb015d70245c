#!/usr/bin/env python3
"""Joins Mdm's and PyTorch's benchmark JSON lines on (op, shape) and prints one markdown table. An Mdm op named
"op@variant" (a forced kernel variant) joins PyTorch's row for "op".

ratio = PyTorch time / Mdm time, so > 1 means Mdm is faster. TFLOP/s = flops / time (formulas in BenchCases.cs).
Ceilings are measured in the same run: % of copy = achieved GB/s over the best device-to-device copy (the 'copy' case,
ours or PyTorch's, bytes read + written); % of peak = TFLOP/s over PyTorch's bf16 4096^3 matmul (cuBLAS on tensor cores).
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
    copies = [r["gbps"] for rows in (ours, theirs) for (op, _), r in rows.items() if op == "copy"]
    copy_bw = max(copies) if copies else None
    peak = next((r["tflops"] for (op, shape), r in theirs.items() if op == "matmul_bf16" and shape == "4096x4096x4096"), None)
    card = next(iter(ours.values()))["card"]
    print(f"card: {card}; copy ceiling {copy_bw or 0:.0f} GB/s; bf16 matmul ceiling {peak or 0:.0f} TFLOP/s (both measured in this run)")
    print()
    print("| op | shape | Mdm ms | PyTorch ms | ratio (torch/mdm) | Mdm GB/s | % of copy BW | Mdm TFLOP/s | % of peak | PyTorch TFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, r in ours.items():
        t = theirs.get(key) or theirs.get((key[0].split("@")[0], key[1]))   # "op@variant": a forced Mdm variant
        tms = f"{t['ms']:.4f}" if t else "n/a"
        ratio = f"{t['ms'] / r['ms']:.2f}x" if t and r["ms"] > 0 else "n/a"
        pct = f"{100 * r['gbps'] / copy_bw:.0f}%" if copy_bw else "n/a"
        tf = f"{r['tflops']:.2f}" if r.get("flops") else "-"
        matrix_bound = r.get("flops") and r.get("bytes") and r["flops"] / r["bytes"] >= 8   # arithmetic intensity, FLOP/byte
        ppk = f"{100 * r['tflops'] / peak:.0f}%" if matrix_bound and peak else "-"
        ttf = f"{t['tflops']:.2f}" if t and t.get("flops") else "-"
        if not r.get("bytes"):
            pct = "-"
        print(f"| {key[0]} | {key[1]} | {r['ms']:.4f} | {tms} | {ratio} | {r['gbps']:.1f} | {pct} | {tf} | {ppk} | {ttf} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
