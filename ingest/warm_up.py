"""A tiny sample file of each format family, for the parse worker to warm up on."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

_SENTENCE = "The parser reads this sample before the first file. It has a verb and a subject."


def write_sample(family: str, directory: Path) -> Path:
    """Write a sample of `family` (text, html, eml, docx, pdf) into `directory`; its path."""
    if family == "text":
        path = directory / "sample.md"
        path.write_text(f"# Sample\n\n{_SENTENCE}\n", encoding="utf-8")
    elif family == "html":
        path = directory / "sample.html"
        path.write_text(f"<html><body><h1>Sample</h1><p>{_SENTENCE}</p></body></html>",
                        encoding="utf-8")
    elif family == "eml":
        message = EmailMessage()
        message["Subject"] = "Sample"
        message["From"] = "parser@example.com"
        message.set_content(_SENTENCE)
        path = directory / "sample.eml"
        path.write_bytes(bytes(message))
    elif family == "docx":
        import docx  # python-docx, what unstructured reads .docx with

        document = docx.Document()
        document.add_heading("Sample", level=1)
        document.add_paragraph(_SENTENCE)
        path = directory / "sample.docx"
        document.save(str(path))
    elif family == "pdf":
        path = directory / "sample.pdf"
        path.write_bytes(pdf_with_text(_SENTENCE))
    else:
        raise ValueError(f"no sample for {family!r}")
    return path


def pdf_with_text(line: str) -> bytes:
    """A one-page PDF showing `line` (ASCII, no parentheses) in Helvetica."""
    content = f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1,
                                                                             xref)
    return bytes(out)
