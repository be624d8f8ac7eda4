#!/usr/bin/env python3
"""Serves a registry snapshot on 127.0.0.1 with a fixed delay per request,
standing in for the network latency of the real registry.

usage: delay_server.py DIR DELAY_MS PORT_FILE
Writes the chosen port to PORT_FILE once listening.

asyncio with the files held in memory: the server's own CPU time must stay
far below the delay, or it (not the client) becomes what the benchmark
measures on a busy machine.

A file named `.document` is served at its directory's own path: the
registry answers a package document at `/@scope/name` and its versions
under `/@scope/name/...`, and a directory cannot also be a file.
"""
import asyncio
import os
import sys


def load(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            url = "/" + os.path.relpath(path, root).replace(os.sep, "/")
            if name == ".document":
                url = url[: -len("/.document")]
            with open(path, "rb") as f:
                files[url] = f.read()
    return files


async def main(root, delay, port_file):
    files = load(root)

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode("latin-1")
                path = target.split("?", 1)[0]
                await asyncio.sleep(delay)
                body = files.get(path)
                status = b"200 OK" if body is not None else b"404 Not Found"
                body = body if body is not None else b'{"error":"Not found"}'
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) / 1000.0, sys.argv[3]))
