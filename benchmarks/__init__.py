"""Benchmarks: measurements of the production paths, printed as ratios against a baseline
measured in the same run (`vqmon bench …`). Kept out of the `monitor` runtime package: they
import torch, the exporters and a local broker launcher the daemon never needs."""
