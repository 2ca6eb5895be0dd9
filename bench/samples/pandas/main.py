"""The benchmark's numpy + pandas job: a small computation, its result, then stays up."""

import pathlib
import time

import numpy as np
import pandas as pd

version = pathlib.Path("VERSION").read_text().strip()
frame = pd.DataFrame({"x": np.arange(1000), "y": np.arange(1000) % 7})
total = int(frame.groupby("y")["x"].sum().sum())
print(f"running commit {version}: total {total}", flush=True)
while True:
    time.sleep(3600)
