"""Example programs for osv-java, and `python -m examples.build` that compiles the ones needing it."""
