"""Release work: builds, releases, test runs, slots and the watch of a running slot."""
