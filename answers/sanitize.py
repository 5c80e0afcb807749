"""Text that leaves the service in an answer, or goes into a prompt, made safe to show.

- Invisible format characters (zero-width spaces and joiners, bidi overrides, Unicode tag
  characters used to smuggle hidden text) are removed: what a model or a reader gets is what a
  person reviewing the document would see.
- Links and images to hosts outside the allowlist are removed from answers, so an instruction
  planted in a document cannot make a chat client fetch an attacker's URL (an image whose
  address carries data out is the classic exfiltration). Link text stays; images go.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

REMOVED_LINK = "[link removed]"

_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_MD_REF_DEF = re.compile(r"^\s*\[[^\]\n]+\]:\s*(\S+).*$", re.MULTILINE)
_HTML_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_HTML_SRC = re.compile(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
_HTML_A = re.compile(r"<a\b([^>]*)>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL)
_BARE_URL = re.compile(r"(?<![\w/])(?:(?:https?|ftp)://|www\.)[^\s<>()\[\]\"']+", re.IGNORECASE)
_SCHEME_ONLY = re.compile(r"^(?:javascript|data|vbscript|file):", re.IGNORECASE)


def strip_invisible(text: str) -> str:
    """Remove Unicode format characters (category Cf): zero-width characters, bidi controls,
    tag characters, soft hyphens."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def host_allowed(url: str, allowlist: Iterable[str]) -> bool:
    """True if the URL's host is on the allowlist ("*.example.com" also covers subdomains).
    URLs without a host (javascript:, data:) are never allowed."""
    if _SCHEME_ONLY.match(url):
        return False
    target = url if "://" in url else f"http://{url}"
    try:
        host = (urlsplit(target).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if not host:
        return False
    for entry in allowlist:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("*."):
            if host == entry[2:] or host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def remove_foreign_links(text: str, allowlist: Iterable[str]) -> str:
    """Drop images and unwrap links whose host is not allowed; replace such bare URLs."""
    allowed = tuple(allowlist)

    def ok(url: str) -> bool:
        return host_allowed(url, allowed)

    text = _MD_IMAGE.sub(lambda m: m.group(0) if ok(m.group(2)) else "", text)
    text = _MD_LINK.sub(lambda m: m.group(0) if ok(m.group(2)) else m.group(1), text)
    text = _MD_REF_DEF.sub(lambda m: m.group(0) if ok(m.group(1)) else "", text)

    def img(m: re.Match[str]) -> str:
        src = _HTML_SRC.search(m.group(0))
        return m.group(0) if src and ok(src.group(1)) else ""

    def anchor(m: re.Match[str]) -> str:
        href = _HTML_SRC.search(m.group(1))
        return m.group(0) if href and ok(href.group(1)) else m.group(2)

    text = _HTML_IMG.sub(img, text)
    text = _HTML_A.sub(anchor, text)

    def bare(m: re.Match[str]) -> str:
        # Keep allowed URLs and those already inside a kept markdown or HTML link.
        return m.group(0) if ok(m.group(0).rstrip(".,;:!?")) else REMOVED_LINK

    return _BARE_URL.sub(bare, text)


def safe_answer_text(text: str, allowlist: Iterable[str]) -> str:
    """What every answer and snippet goes through before it is returned."""
    return remove_foreign_links(strip_invisible(text), allowlist)
