"""Helpers for tests: a real Mosquitto on a free port, free ports, shared data lookup."""
