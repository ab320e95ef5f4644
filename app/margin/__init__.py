"""Clients, positions, loans and margin monitoring."""
