"""The panels of the main screen; each takes plain records (``netdoctor.tui.run_view``) and
draws them, and talks to its screen only through messages."""
