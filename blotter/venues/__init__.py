"""Venue gateways: simulated exchanges and managed connectivity (adapters for the venue port)."""
