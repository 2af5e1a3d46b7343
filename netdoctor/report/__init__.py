"""Views of a run and its diagnoses for people and programs: rich text and JSON.

Each emitter returns a value (a rich renderable, a dict, a string) and never prints: the CLI decides
where output goes. Nothing here imports torch or textual.
"""
