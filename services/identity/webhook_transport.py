"""How one webhook try reaches its receiver, and which addresses it may not reach.

Every address the receiver's name resolves to is checked (services.identity.webhooks checks the URL when it is set,
and this module again at every try: DNS may have changed), and the connection goes to the address that was checked,
so no second lookup can slip another one in. A try has one deadline for all of it (connect, TLS, sending, the
answer's status line and headers), however slowly the receiver trickles bytes. Only the status line and headers of
the answer are read (h11 caps them at 100 KiB); its body is never read, so nothing is decompressed or held."""

import ipaddress
import socket
import ssl
import time
from base64 import b64encode
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Carrier-grade NAT (RFC 6598): neither global nor "private" to the ipaddress module, but not the internet either.
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(httpcore.ConnectError):
    """The receiver's name resolves to an address webhooks may not reach."""


class LookupTimedOut(httpcore.ConnectTimeout):
    """The resolver did not answer within the time given."""


# getaddrinfo has no timeout of its own (a broken resolver holds it for 5 s a server and try): lookups run here, and
# their callers stop waiting when their time is up. A lookup that hangs holds one of these threads until the
# resolver gives up, not the caller.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, 6to4, NAT64), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped or address.sixtofour:
            return address.ipv4_mapped or address.sixtofour  # type: ignore[return-value]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_allowed(address: IPAddress, *, allow_private: bool) -> bool:
    """Public addresses always; loopback and private ranges only when the operator allows private networks;
    link-local (cloud metadata at 169.254.169.254), unspecified and multicast never."""
    address = embedded_ipv4(address)
    if address.is_unspecified or address.is_link_local or address.is_multicast:
        return False
    if address.is_global and address not in _SHARED_ADDRESS_SPACE:
        return True
    return allow_private


def resolve(host: str, port: int, timeout_s: float) -> list[IPAddress]:
    """Every address `host` stands for, in the resolver's order (a literal in any spelling the C library reads:
    127.1, 0x7f000001, 2130706433, 0177.0.0.1, IPv6); LookupTimedOut after `timeout_s`."""
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=max(timeout_s, 0))
    except FutureTimeout:
        lookup.cancel()  # still queued behind hung lookups: never started
        raise LookupTimedOut(f"looking up {host} took more than {timeout_s:.3g} s") from None
    # An IPv6 scope ("fe80::1%eth0") is dropped: the address alone decides.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def allowed_addresses(host: str, port: int, *, allow_private: bool, timeout_s: float) -> list[IPAddress]:
    """The addresses of `host` to connect to; TargetRefused when any of them is not allowed (a name that resolves
    to one public and one internal address is refused: which one a client picks is not ours to choose)."""
    addresses = resolve(host, port, timeout_s)
    refused = [a for a in addresses if not address_allowed(a, allow_private=allow_private)]
    if refused:
        raise TargetRefused(f"{host} resolves to {', '.join(map(str, refused))}, which webhooks may not reach")
    return addresses


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the try's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float):
        self._stream, self._deadline = stream, deadline

    def _time_left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the try's deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._time_left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, self._time_left(timeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _CheckedBackend(httpcore.NetworkBackend):
    """Connects only to allowed addresses of the host, each connection bound to the try's deadline."""

    def __init__(self, deadline: float, allow_private: bool):
        self._deadline, self._allow_private = deadline, allow_private
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = allowed_addresses(
                host, port, allow_private=self._allow_private, timeout_s=self._deadline - time.monotonic()
            )
        except (OSError, ValueError) as exc:  # no such name
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("the try's deadline passed")
            try:
                stream = self._backend.connect_tcp(str(address), port, min(timeout or left, left), local_address, socket_options)  # fmt: skip
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise error

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks go over TCP only")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


_SSL_CONTEXT = httpx.create_ssl_context()


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # the receiver's HTTP status; None: no answer
    error: str | None  # why there was no answer, in words that say nothing about the network behind the service
    detail: str | None = None  # the full reason, for the service's own log only


def post(url: str, body: bytes, headers: dict[str, str], *, timeout_s: float, allow_private: bool) -> Answer:
    """POST `body` to `url` within `timeout_s` in all; the answer's status, or why there was none."""
    target = httpx.URL(url)
    sent = {
        "Host": target.netloc.decode("ascii"),
        "Content-Length": str(len(body)),
        "Accept-Encoding": "identity",  # nothing to decode: the answer's body is not read anyway
        "Connection": "close",
        **headers,
    }
    if target.username or target.password:  # credentials in the URL are sent as HTTP basic auth, as clients do
        sent["Authorization"] = "Basic " + b64encode(f"{target.username}:{target.password}".encode()).decode()
    deadline = time.monotonic() + timeout_s
    core_url = httpcore.URL(scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path)
    try:
        with (
            httpcore.ConnectionPool(
                ssl_context=_SSL_CONTEXT, max_connections=1, network_backend=_CheckedBackend(deadline, allow_private)
            ) as pool,
            pool.stream(
                "POST",
                core_url,
                headers=list(sent.items()),
                content=body,
                extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)},
            ) as response,
        ):
            return Answer(response.status, None)
    except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
        # Refused targets, names that do not resolve, closed and filtered ports, TLS failures: all alike to the
        # delivery log, so that it cannot be used to map what the service can reach.
        return Answer(None, "could not connect to the receiver", f"{type(exc).__name__}: {exc}")
    except httpcore.TimeoutException as exc:
        return Answer(None, f"no answer within {timeout_s:g} s", f"{type(exc).__name__}: {exc}")
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        return Answer(None, "the connection broke or the answer was not HTTP", f"{type(exc).__name__}: {exc}")
