"""`python -m pgferry` runs the CLI."""

from pgferry.cli import main

main()
