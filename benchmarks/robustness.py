"""Detection on generated clips the detectors were not tuned on: every fault style at a weak and
a strong setting, and hard negatives (night, static, fades, soft focus, snow, cuts).

    .venv/bin/python benchmarks/robustness.py [FOLDER] [--width 480 --height 270 --fps 15]

Clips are cached in FOLDER (default state/robustness); prints `vqmon eval`'s table.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from monitor.cli import main as vqmon
from monitor.demo.labelled_set import fault_cases, negative_cases, write_set


def run() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default="state/robustness")
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=270)
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--profile", default=None)
    args = ap.parse_args()
    folder = f"{args.folder}/{args.width}x{args.height}@{args.fps}"
    cases = [
        dataclasses.replace(c, width=args.width, height=args.height, fps=args.fps)
        for c in fault_cases() + negative_cases()
    ]
    labels = write_set(folder, cases)
    extra = ["--profile", args.profile] if args.profile else []
    return vqmon(["eval", "--labels", str(labels), folder, *extra])


if __name__ == "__main__":
    sys.exit(run())
