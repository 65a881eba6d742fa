"""Helpers for the tests (not test modules): configs, fixture data, real-data gating, file and model builders."""
