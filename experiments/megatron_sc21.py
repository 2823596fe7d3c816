#!/usr/bin/env python3
"""Megatron-LM SC'21 Table 1 (arXiv 2104.04473) on a Selene-like A100 platform: predicted vs
published TFLOPS/GPU for every row (issue 5 item 5; docs/VALIDATION.md explains the setup).

Plans from NVIDIA/Megatron-LM examples/sc21/run_table_1.sh and CONFIG.sh: TP, PP, micro-batch,
layers per virtual stage, --DDP-impl (torch for rows up to 18B, local from 39B), --fp16 (no
--accumulate-allreduce-grads-in-fp32: FP16 gradient buffers), full recomputation.

usage: experiments/megatron_sc21.py [--tcsim build/tcsim] [--fidelity flow|analytical] [--only 1.7b,1t]
"""
import argparse
import json
import subprocess
import sys
import time

# preset suffix, layers, hidden, TP, PP, GPUs, batch, micro-batch, virtual stages, DDP, published
ROWS = [
    ("1.7b", 24, 2304, 1, 1, 32, 512, 16, 0, "torch", 137),
    ("3.6b", 30, 3072, 2, 1, 64, 512, 16, 0, "torch", 138),
    ("7.5b", 36, 4096, 4, 1, 128, 512, 16, 0, "torch", 142),
    ("18.4b", 40, 6144, 8, 1, 256, 1024, 8, 0, "torch", 135),
    ("39.1b", 48, 8192, 8, 2, 512, 1536, 4, 0, "local", 138),
    ("76.1b", 60, 10240, 8, 4, 1024, 1792, 2, 3, "local", 140),
    ("145.6b", 80, 12288, 8, 8, 1536, 2304, 2, 2, "local", 148),
    ("310.1b", 96, 16384, 8, 16, 1920, 2160, 1, 2, "local", 155),
    ("529.6b", 105, 20480, 8, 35, 2520, 2520, 1, 3, "local", 163),
    ("1t", 128, 25600, 8, 64, 3072, 3072, 1, 0, "local", 163),
]


def megatron_flops(layers, hidden, batch, s=2048, vocab=51200):
    """Megatron's count with full recomputation (arXiv 2104.04473 sec 5.1)."""
    l, h = layers, hidden
    return 96 * batch * s * l * h * h * (1 + s / (6 * h) + vocab / (16 * l * h))


def command(tcsim, row, fidelity):
    name, _, _, tp, pp, gpus, batch, mb, v, ddp, _ = row
    cmd = [tcsim, "run", "--gpu", "A100", "--nodes", str(gpus // 8), "--fabric", "multi-plane-fat-tree",
           "--set", "fabric.radix=40", "--workload", "megatron-" + name,
           "--set", f"plan.tp={tp}", "--set", f"plan.pp={pp}", "--set", f"plan.global_batch={batch}",
           "--set", f"plan.micro_batch={mb}", "--set", "plan.recompute=full",
           "--set", "plan.materialize_attention_scores=true", "--set", "plan.grad_bytes_per_param=2",
           "--set", f"sim.fidelity={fidelity}", "--json"]
    if v:
        cmd += ["--set", "plan.schedule=interleaved-1f1b", "--set", f"plan.virtual_stages={v}"]
    if ddp == "local":
        cmd += ["--set", "plan.grad_reduce=after_backward"]
    return cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tcsim", default="build/tcsim")
    ap.add_argument("--fidelity", default="flow", choices=["flow", "analytical"])
    ap.add_argument("--only", default="", help="comma-separated row names, e.g. 1.7b,1t")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    print("| params | TP | PP | GPUs | DDP | step (s) | predicted | published | error | compute (s) | exposed comm (s) | bubble (s) | wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    errors = []
    for row in ROWS:
        if only and row[0] not in only:
            continue
        t0 = time.time()
        out = subprocess.run(command(args.tcsim, row, args.fidelity), capture_output=True, text=True)
        wall = time.time() - t0
        if out.returncode != 0:
            print(f"{row[0]}: tcsim failed: {out.stderr.strip()}", file=sys.stderr)
            return 1
        res = json.loads(out.stdout)
        step = res["step_time_s"]
        pred = megatron_flops(row[1], row[2], row[6]) / step / row[5] / 1e12
        err = pred / row[10] - 1
        errors.append(abs(err))
        b = res["breakdown"]
        print(f"| {row[0]} | {row[3]} | {row[4]} | {row[5]} | {row[9]} | {step:.3f} | {pred:.1f} | {row[10]} | "
              f"{err:+.1%} | {b['compute_s']:.2f} | {b['exposed_comm_total_s']:.2f} | {b['bubble_s']:.2f} | {wall:.1f} |")
    if errors:
        print(f"\nmean absolute error {sum(errors) / len(errors):.1%} over {len(errors)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
