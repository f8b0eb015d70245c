#!/usr/bin/env python3
"""Offline SASS audit: assembles every kernel's PTX for sm_90 (sm_90a for wgmma kernels) with ptxas 12.4 and checks its budget.

usage: sass-audit.py PTX_DIR PTXAS_BIN_DIR
PTX_DIR holds <kernel>.ptx and manifest.json (from `Mdm.Bench ptx --out PTX_DIR`); budgets come from the
[KernelBudget] attribute on each [Kernel] method or KernelCatalog field (default: no stack, no spills, <= 128 registers);
the manifest's "arch" is sm_90a for kernels patched by Sm90aPtx (wgmma), whose SASS must then contain HGMMA.
Prints one line per kernel and exits 1 if any kernel breaks its budget.
"""
import json
import os
import re
import subprocess
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ptx_dir, bin_dir = argv
    ptxas = os.path.join(bin_dir, "ptxas")
    cuobjdump = os.path.join(bin_dir, "cuobjdump")
    manifest = json.load(open(os.path.join(ptx_dir, "manifest.json")))
    failures = 0
    print(f"{'kernel':28} {'regs':>5} {'stack':>6} {'spill':>6} {'smem':>7} {'HMMA':>5} {'LDSM':>5} {'HGMMA':>5}  verdict")
    for k in manifest:
        src = os.path.join(ptx_dir, k["name"] + ".ptx")
        text = open(src).read()
        # ILGPU writes the driver's newest PTX ISA; ptxas 12.4 knows up to 8.4, and only the header line differs.
        text = re.sub(r"^\.version \d+\.\d+", ".version 8.4", text, flags=re.M)
        patched = src + ".84"
        open(patched, "w").write(text)
        cubin = os.path.join(ptx_dir, k["name"] + ".cubin")
        arch = k.get("arch", "sm_90")
        r = subprocess.run([ptxas, f"-arch={arch}", "-v", "-o", cubin, patched], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{k['name']:28} ptxas failed: {r.stderr.strip()[:300]}")
            failures += 1
            continue
        log = r.stderr
        regs = int(re.search(r"Used (\d+) registers", log).group(1))
        stack, spill_st, spill_ld = map(int, re.search(
            r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", log).groups())
        smem_m = re.search(r"(\d+) bytes smem", log)
        smem = int(smem_m.group(1)) if smem_m else 0
        sass = subprocess.run([cuobjdump, "-sass", cubin], capture_output=True, text=True).stdout
        hmma, ldsm, hgmma = sass.count("HMMA"), sass.count("LDSM"), sass.count("HGMMA")
        local = "LDL" in sass or "STL" in sass
        problems = []
        if regs > k["maxRegisters"]:
            problems.append(f"{regs} registers > {k['maxRegisters']}")
        if stack > k["maxStackBytes"]:
            problems.append(f"{stack} B stack > {k['maxStackBytes']}")
        if spill_st + spill_ld > k["maxSpillBytes"]:
            problems.append(f"{spill_st + spill_ld} B spills > {k['maxSpillBytes']}")
        if local and k["maxStackBytes"] == 0:
            problems.append("local memory (LDL/STL) in SASS")
        if k["requireHmma"] and hmma == 0:
            problems.append("no HMMA")
        if k["requireLdsm"] and ldsm == 0:
            problems.append("no LDSM")
        if k.get("requireHgmma") and hgmma == 0:
            problems.append("no HGMMA")
        verdict = "ok" if not problems else "FAIL: " + "; ".join(problems)
        failures += bool(problems)
        print(f"{k['name']:28} {regs:5} {stack:6} {spill_st + spill_ld:6} {smem:7} {hmma:5} {ldsm:5} {hgmma:5}  {verdict}")
    print(f"SASS audit: {len(manifest) - failures} of {len(manifest)} kernels within budget")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
