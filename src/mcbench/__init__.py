"""mcbench: a benchmark for personalized multiple clustering of images."""

import os

# Idle OpenMP threads sleep instead of spinning: on small CPUs shared by parallel jobs this made
# torch steps several times faster (docs/tiny_clip.md). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
