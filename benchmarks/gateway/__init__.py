"""The gateway benchmark: one digits model behind modelfleet and other Python servers, loaded by wrk.

`python benchmarks/gateway/run.py` is the one command; README.md beside this file says what it
measures and how each server is configured.
"""
