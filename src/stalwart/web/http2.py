"""Serving the dashboard over HTTP/2 (``stalwart dashboard --http2``): uvicorn speaks
HTTP/1.1 only, so HTTP/2 is Hypercorn's (the ``http2`` extra), over TLS, with ALPN
offering h2 and http/1.1 (old clients keep working). The same limits as under uvicorn
where Hypercorn has them: 5 s keep-alive, 16 KiB of headers, graceful shutdown in
10 s, backlog 512, no Server header; request bodies are capped by the app itself."""

from __future__ import annotations

import asyncio
import signal

from starlette.applications import Starlette

__all__ = ["serve_http2"]


def serve_http2(
    web: Starlette, *, host: str, port: int, root_path: str, certfile: str, keyfile: str
) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.certfile, config.keyfile = certfile, keyfile
    config.alpn_protocols = ["h2", "http/1.1"]
    config.keep_alive_timeout = 5
    config.graceful_timeout = 10
    config.h11_max_incomplete_size = 16 * 1024
    config.backlog = 512
    config.include_server_header = False
    config.root_path = root_path
    config.accesslog = None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(web, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(main())
