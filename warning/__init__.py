"""Seconds-to-reach early-warning dispatch pipeline (pipeline core)."""
