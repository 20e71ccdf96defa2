#!/usr/bin/env python3
"""Summarizes nvcc -Xptxas -v output (stdin): one line per kernel and arch with
registers, shared memory, stack and spills, demangled (c++filt) and shortened."""
import re
import subprocess
import sys

rows, cur = [], None
for line in sys.stdin:
    m = re.search(r"Compiling entry function '(\S+)' for '(sm_\d+)'", line)
    if m:
        cur = {"name": m.group(1), "arch": m.group(2), "regs": "?", "smem": "0", "stack": "0",
               "spill": "0/0"}
        rows.append(cur)
        continue
    if cur is None:
        continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m:
        cur["stack"], cur["spill"] = m.group(1), f"{m.group(2)}/{m.group(3)}"
    m = re.search(r"Used (\d+) registers", line)
    if m:
        cur["regs"] = m.group(1)
        s = re.search(r"(\d+) bytes smem", line)
        cur["smem"] = s.group(1) if s else "0"
names = subprocess.run(["c++filt"], input="\n".join(r["name"] for r in rows), text=True,
                       capture_output=True).stdout.splitlines()
for r, n in zip(rows, names):
    n = re.sub(r"\(.*\)$", "", n).replace("qlc::cuda::", "").replace("__nv_bfloat16", "bf16")
    n = n.replace("__half", "f16")
    print(f"{r['arch']}  regs {r['regs']:>3}  smem {r['smem']:>6}  stack {r['stack']:>3}  "
          f"spill {r['spill']:>7}  {n}")
bad = [r for r in rows if r["spill"] != "0/0"]
print(f"{len(rows)} kernels, {len(bad)} with spills")
