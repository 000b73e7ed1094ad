"""`python -m outreach.cli` runs the command line."""

from outreach.cli import main

main()
