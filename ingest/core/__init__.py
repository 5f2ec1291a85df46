"""The ground floor: types, errors, settings and the small Protocols every other layer builds on.

Nothing here imports from the rest of citewise, and nothing here imports a heavy library at module
level, so any command can load it in milliseconds.
"""
