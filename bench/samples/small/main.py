"""The benchmark's sample app: says which commit it runs (its first output), then stays up."""

import pathlib
import time

import benchlib

version = pathlib.Path("VERSION").read_text().strip()
print(f"running commit {version} with benchlib {benchlib.VERSION}", flush=True)
while True:
    time.sleep(3600)
