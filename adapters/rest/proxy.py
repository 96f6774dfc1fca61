"""Which HTTP proxy, if any, the environment names for an endpoint (HTTP(S)_PROXY, NO_PROXY)."""

from __future__ import annotations

import base64
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: bytes | None  # the Proxy-Authorization value, from the proxy URL's user info


def proxy_for(scheme: str, host: str, port: int) -> Proxy | None:
    """The proxy for ``scheme://host:port`` from the environment, read now, as ``urllib`` and
    ``requests`` read it (``<scheme>_proxy`` or ``all_proxy``, either case; ``no_proxy``
    bypasses it). ValueError for a proxy this client cannot speak to (only ``http://`` ones)."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or urllib.request.proxy_bypass_environment(f"{host}:{port}", proxies):
        return None
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"the proxy {parts.scheme}://{parts.hostname} is not an http:// proxy")
    authorization = None
    if parts.username is not None:
        user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = b"Basic " + base64.b64encode(user_pass.encode())
    return Proxy(parts.hostname, parts.port or 80, authorization)
