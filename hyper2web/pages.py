"""Small answers shared by the static files, the proxy and the WebSocket refusals."""

from __future__ import annotations

import html
import http

from . import encoding
from .http import Response

__all__ = ["prefers_html", "send_error_page"]


def prefers_html(accept: str) -> bool:
    """True when ``accept`` names ``text/html`` with a q-value no lower than any other type."""
    accepted = encoding.parse_qvalues(accept)
    html_q = accepted.get("text/html")
    others = [q for media, q in accepted.items()
              if media not in ("text/html", "*/*", "text/*", "application/xhtml+xml")]
    return html_q is not None and html_q > 0 and html_q >= max(others, default=0.0)


async def send_error_page(response: Response, status: int, detail: str = "") -> None:
    """A short HTML page for an error status."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:  # a status with no registered name
        reason = "Error"
    text = f"{status} {reason}"
    extra = f"<p>{html.escape(detail)}</p>" if detail else ""
    body = (f"<!doctype html><meta charset=utf-8><title>{text}</title>"
            f"<h1>{text}</h1>{extra}\n").encode()
    response.status = status
    response.set_header("content-type", "text/html; charset=utf-8")
    await response.send(body)
