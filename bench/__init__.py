"""Benchmarks, run by hand as modules (`python -m bench.NAME`) so bench/queue.py cannot shadow the stdlib queue."""
