"""`python -m forum` runs the `forum` command."""

from forum.cli import main

main()
