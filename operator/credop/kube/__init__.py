"""Thin adapters over the Kubernetes API (the `kubernetes` client, run in threads)."""
