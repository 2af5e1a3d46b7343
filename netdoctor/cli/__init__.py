"""The ``netdoctor`` command line (typer): one thin module per command, wired in ``app.py``."""
