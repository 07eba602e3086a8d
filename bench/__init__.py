"""Benchmarks on the real engine: downtime, end-to-end time, log relay latency and worker fan-out."""
