"""Docker Swarm as the Runner: a project's slots run as swarm services (runner.py)."""
