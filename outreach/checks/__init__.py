"""Every project-wide check, above the engine: rule cross-checks (rules.py), templates and sample
rendering (templates.py), the whole project and the checked way to open it (project.py)."""
