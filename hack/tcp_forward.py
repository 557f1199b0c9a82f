"""Forward TCP connections from one address to another (the test bed's API server door for pods).

The test bed's kube-apiserver listens on 127.0.0.1 only. The node's pods, kubelet
and kube-proxy live in network namespaces of their own and reach the host through
a veth link, so this process listens on the host's end of that link and copies
bytes both ways to the API server on loopback (TLS passes through untouched).

    python hack/tcp_forward.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen_host: str, listen_port: int, target_host: str, target_port: int) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, listen_host, listen_port, reuse_address=True, backlog=512)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"forwarding {listen_host}:{listen_port} -> {target_host}:{target_port}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(serve(argv[1], int(argv[2]), argv[3], int(argv[4])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
