"""Contract suites: one behaviour, every implementation of a seam held to it."""
