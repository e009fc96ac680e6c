"""Faust agents: each reads a topic, calls the pure code, writes a topic."""
