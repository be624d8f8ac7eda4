#!/usr/bin/env python3
"""Serves a registry snapshot on 127.0.0.1 with a fixed delay per request,
to stand in for the network latency of the real registry.

usage: delay_server.py DIR DELAY_MS PORT_FILE
Writes the chosen port to PORT_FILE once listening.
"""
import http.server
import os
import sys
import time
import urllib.parse


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def translate_path(self, path):
        # Registry paths like /-/v1/search?text=... map to files; drop the query.
        path = urllib.parse.urlsplit(path).path
        return super().translate_path(path)

    def send_head(self):
        time.sleep(DELAY)
        return super().send_head()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    root, delay_ms, port_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    DELAY = delay_ms / 1000.0
    os.chdir(root)
    http.server.ThreadingHTTPServer.request_queue_size = 256
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()
