"""How ``withdrawal serve`` runs the app: the workers' HTTP protocol, the log format, the start-up heap.

With ``--workers N`` each worker process builds its own app (``withdrawal.app.worker_app``). The
parent migrates the database (and seeds the demo) once before the workers start, so a worker's own
migration step finds the schema at head and changes nothing. Settings reach the workers through the
``WITHDRAWAL_*`` environment.
"""

from __future__ import annotations

import asyncio
import gc
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class NoDelayH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off on every connection.

    With several workers uvicorn listens on a socket it made itself, whose accepted
    connections asyncio does not mark TCP_NODELAY; a response written in two parts
    then waits for the client's delayed ACK: with ``--workers 2`` every request took
    44 ms (median, loopback) instead of 0.9 ms, so it stays for latency.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]


def freeze_start_up_heap() -> None:
    """Leave what start-up built (modules, the knowledge base, the app) out of every later collection.

    A CDS request with a Synthea-sized record creates some 100,000 objects; each full collection it
    triggered walked the start-up heap too (about 15 ms of its CPU time). Frozen, the collector walks
    only the objects of requests in flight.
    """
    gc.collect()
    gc.freeze()

