"""`python -m cli` runs storctl (what `make quickstart` and the tests call)."""

from cli.main import main

main()
