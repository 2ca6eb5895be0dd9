"""The benchmark's FastAPI service: serves on $PORT, then says which commit it runs."""

import asyncio
import os
import pathlib

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

version = pathlib.Path("VERSION").read_text().strip()
port = int(os.environ.get("PORT", "8000"))
app = FastAPI()


class Info(BaseModel):
    commit: str
    httpx: str


@app.get("/")
def info() -> Info:
    return Info(commit=version, httpx=httpx.__version__)


async def serve() -> None:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.005)
    print(f"running commit {version} on port {port}", flush=True)
    await task


asyncio.run(serve())
