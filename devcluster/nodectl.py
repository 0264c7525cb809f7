"""`python -m jobgate.devcluster.nodectl prepare|check|relay PORT`: the real node's helpers.

prepare     build (or find cached) the real node's binaries and images, so that starting
            a real node later takes seconds; on a machine that cannot run one, say why
            and succeed (`make node`)
check       exit 0 if this machine can run a real node, else say why and exit 1
relay PORT  serve 127.0.0.1:PORT to pods at the node's address (realnode.relay_argv)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from . import nodeimages, realnode


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close, so the other direction can still finish
    except OSError:
        writer.close()


async def relay(port: int) -> None:
    """Forward every connection to NODE_IP:port to 127.0.0.1:port, until cancelled."""

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()

    server = await asyncio.start_server(handle, realnode.NODE_IP, port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobgate.devcluster.nodectl", description=__doc__)
    parser.add_argument("command", choices=["prepare", "check", "relay"])
    parser.add_argument("port", type=int, nargs="?", help="relay: the loopback port to serve to pods")
    args = parser.parse_args(argv)
    if args.command == "relay":
        if args.port is None:
            parser.error("relay needs a port")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(relay(args.port))
        return 0
    if reason := realnode.unsupported_reason():
        print(f"realnode: this machine cannot run a real node: {reason}")
        return 0 if args.command == "prepare" else 1
    if args.command == "check":
        print("realnode: this machine can run a real node")
        return 0
    bin_dir = realnode.find_node_bin_dir()
    print(f"node binaries: {bin_dir}")
    for image in (nodeimages.pause_image(bin_dir), nodeimages.job_image()):
        print(f"image {image.ref}: {image.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
