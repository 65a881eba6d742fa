"""Helpers for the tests (not test modules): fixture data, real-data gating, file builders."""
