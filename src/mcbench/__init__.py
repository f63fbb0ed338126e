"""mcbench: a benchmark for personalized multiple clustering of images."""

__version__ = "0.1.0"
