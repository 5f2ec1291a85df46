"""The `citewise` command line. `api.cli.main:main` is the entry point; each command lives in a module of its own."""
