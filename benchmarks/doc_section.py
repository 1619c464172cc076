"""How every benchmark script writes its figures into a doc: the marked section, atomically."""

from __future__ import annotations

from pathlib import Path

from rasp_compiler.export.safetensors_file import atomic_write


def replace_section(doc: Path, begin: str, end: str, body: str, heading: str | None = None) -> None:
    """Put ``body`` between the ``begin`` and ``end`` markers of ``doc`` (markers kept).

    Without the markers: with ``heading``, the section is appended under that heading;
    otherwise it is an error (the doc is not written)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    elif heading is not None:
        text = text.rstrip() + f"\n\n{heading}\n\n{block}\n"
    else:
        raise ValueError(f"{doc} has no {begin} ... {end} markers")
    atomic_write(doc, text.encode("utf-8"))
