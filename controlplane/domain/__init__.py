"""Plain data and pure decisions: no file, process, network or clock of its own."""
