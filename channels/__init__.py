"""Providers: one module per provider and direction. The engine talks to them through channels.base."""
