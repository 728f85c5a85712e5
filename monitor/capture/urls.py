"""What kind of source a URL names, and how to show it without its password."""

from __future__ import annotations

import os
import re
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from monitor.errors import SourceError

SourceKind = Literal["rtsp", "http", "file", "v4l2", "gstreamer"]
LIVE_KINDS = ("rtsp", "http", "v4l2", "gstreamer")
_SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http", "file": "file"}


def classify(url: str) -> SourceKind:
    """Raise SourceError for a scheme vqmon does not read, naming the ones it does."""
    if re.match(r"^/dev/video\d+$", url):
        return "v4l2"
    if "!" in url and "://" not in url.split("!")[0]:
        return "gstreamer"  # an OpenCV/GStreamer pipeline string, e.g. for Jetson's nvv4l2decoder
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if not m:
        return "file"
    scheme = m.group(1).lower()
    if scheme not in _SCHEMES:
        raise SourceError(
            f"unknown URL scheme {scheme!r} in {mask_credentials(url)} "
            "(use rtsp://, rtsps://, http(s)://, a file path or /dev/videoN)"
        )
    return _SCHEMES[scheme]  # type: ignore[return-value]


def file_path(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def file_problem(path: str) -> str | None:
    """Why a file source cannot be read, or None."""
    if os.path.isdir(path):
        return f"{path}: a directory, not a video file (give the path of a file in it)"
    if not os.path.isfile(path):
        return f"{path}: file not found (check the path)"
    return None


def mask_credentials(url: str) -> str:
    """rtsp://user:secret@host/x -> rtsp://user:***@host/x (also hides tokens in the query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = re.sub(r"(?i)((?:password|passwd|pwd|token|key|secret|auth)=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def source_label(url: str) -> str:
    """The `source` field of events: a file's base name, otherwise the URL with credentials masked."""
    try:
        kind = classify(url)
    except SourceError:
        return mask_credentials(url)
    if kind == "file":
        return os.path.basename(file_path(url))
    return mask_credentials(url)
