"""HTML reduced to what a reader sees, before it is parsed.

Text a browser does not show (elements with `hidden`, `aria-hidden="true"`, or styles such as
display:none, visibility:hidden, font-size:0, opacity:0; <template>, <script>, <style>,
<noscript>; comments) is where instructions meant for a model rather than a person hide.
It is dropped, so it is never indexed, quoted or put in a prompt.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, Tag

_HIDING_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*(hidden|collapse)|font-size\s*:\s*0(?![.\d]*[1-9])"
    r"|opacity\s*:\s*0(?![.\d]*[1-9])|(?<![-\w])(width|height)\s*:\s*0(px)?\s*(;|$)",
    re.IGNORECASE,
)
_INVISIBLE_ELEMENTS = ("script", "style", "template", "noscript")


def _hidden(tag: Tag) -> bool:
    if tag.has_attr("hidden"):
        return True
    if str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    return bool(_HIDING_STYLE.search(str(tag.get("style", ""))))


def visible_html(raw: bytes | str) -> bytes:
    """The document without what a browser would not show, as UTF-8; the rest unchanged."""
    soup = BeautifulSoup(raw, "lxml")
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(_INVISIBLE_ELEMENTS):
        tag.decompose()
    for tag in soup.find_all(_hidden):
        if not tag.decomposed:
            tag.decompose()
    return soup.encode("utf-8")
