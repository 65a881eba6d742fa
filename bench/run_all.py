"""Run every benchmark and write one JSON holding all their keys.

Each benchmark runs as its own process (as a user would run it) and prints one JSON object as its
last line; this script collects them, with the exact command of each, into --out.

    EDGE_TAAF_DATA=../shared/data python -m bench.run_all                      # everything (hours on CPU)
    EDGE_TAAF_DATA=../shared/data python -m bench.run_all --skip accuracy \\
        --float-checkpoint F.pt --int8-checkpoint Q.pt                          # minutes

bench/accuracy.py alone trains 27 networks (3 seeds x 9 configurations, 40 epochs): on 2 CPU cores
that takes hours; --accuracy-args passes it fewer seeds or epochs.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from sensors.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]   # the repository: each benchmark runs here, as python -m bench.<name>
BENCHES = ("encoders", "train_step", "accuracy", "quant", "sim", "robustness")


def command(name: str, args) -> list[str]:
    cmd = [sys.executable, "-m", f"bench.{name}"]
    if name == "accuracy":
        cmd += shlex.split(args.accuracy_args)
    if name == "quant" and args.float_checkpoint:
        cmd += ["--checkpoint", args.float_checkpoint]
    if name in ("sim", "robustness") and args.int8_checkpoint:
        cmd += ["--checkpoint", args.int8_checkpoint]
    return cmd


def last_json(stdout: str, name: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"python -m bench.{name} printed no JSON line")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", nargs="*", default=[], choices=BENCHES)
    ap.add_argument("--float-checkpoint", help="float fsdd_mnist checkpoint for bench/quant.py (else it trains one)")
    ap.add_argument("--int8-checkpoint", help="QAT int8 checkpoint for bench/sim.py and bench/robustness.py "
                    "(else each uses an untrained model, labelled so)")
    ap.add_argument("--accuracy-args", default="", help="extra arguments for bench/accuracy.py")
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench" / "all.json"))
    args = ap.parse_args(argv)
    results = {}
    for name in BENCHES:
        if name in args.skip:
            continue
        cmd = command(name, args)
        print(f"== {' '.join(cmd)}", flush=True)
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit(f"python -m bench.{name} failed with exit code {proc.returncode}")
        results[name] = {"command": " ".join(["python", *cmd[1:]]), "seconds": round(time.time() - t0, 1),
                         "result": last_json(proc.stdout, name)}
    scalars = {name: {k: v for k, v in r["result"].items() if not isinstance(v, (dict, list))} for name, r in results.items()}
    seen = [k for keys in scalars.values() for k in keys]
    # each benchmark's own keys; a key two benchmarks share (seconds, T, ...) is prefixed with its bench
    flat = {(k if seen.count(k) == 1 else f"{name}.{k}"): v for name, keys in scalars.items() for k, v in keys.items()}
    out = {"benches": results, "keys": flat}
    folder = Path(args.out).parent
    folder.mkdir(parents=True, exist_ok=True)
    for name, r in results.items():   # each benchmark's own last-line JSON beside the summary
        atomic_write_text(folder / f"{name}.json", json.dumps(r["result"]) + "\n")
    atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    print(json.dumps(flat))
    return out


if __name__ == "__main__":
    main()
