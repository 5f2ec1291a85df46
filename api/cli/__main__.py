"""`python -m api.cli`: the same as the `citewise` command."""

from api.cli.main import main

main()
