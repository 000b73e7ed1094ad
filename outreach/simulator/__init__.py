"""`outreach simulate`: the project's rules over a synthetic market (market.py), once per channel
policy (policies.py), through the real engine (run.py)."""
