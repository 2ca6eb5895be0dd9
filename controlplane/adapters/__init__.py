"""One side effect each: subprocesses, files, git, secrets, the store, supervisord,
processes and cgroups.
"""
