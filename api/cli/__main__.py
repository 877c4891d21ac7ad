"""`python -m api.cli`: the `vardmatch` command."""

from api.cli import main

main()
