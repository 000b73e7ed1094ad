"""Hostile cases: what a buyer, a provider or a member of staff may try against the engine."""
