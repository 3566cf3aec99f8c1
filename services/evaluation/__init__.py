"""Offline evaluators behind the CLI (not imported by the service)."""
