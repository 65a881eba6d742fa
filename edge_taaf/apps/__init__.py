"""Hydra applications (console scripts)."""
