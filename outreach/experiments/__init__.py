"""Content experiments: assigning variants (assign.py), honest verdicts (stats.py), the figures per
experiment (results.py), and stopping one (stop.py)."""
