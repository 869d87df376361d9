"""Simulated exchanges: real order books with matching, a synthetic market, latency and faults."""
