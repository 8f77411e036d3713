"""The operator's source list: `bot/defaults/sources.toml` (or AINEWS_SOURCES_FILE) and OPML
import/export."""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from storage.sources import SourceSpec
from storage.taxonomy import Taxonomy


class SourcesFileError(ValueError):
    pass


def load_sources_toml(path: Path, taxonomy: Taxonomy) -> list[SourceSpec]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SourcesFileError(f"cannot read {path}: {exc}") from None
    specs = []
    for number, entry in enumerate(data.get("source", []), start=1):
        try:
            spec = SourceSpec(
                url=str(entry["url"]),
                name=str(entry.get("name") or entry["url"]),
                category=str(entry.get("category", taxonomy.slugs[0])),
                language=str(entry.get("language", "en")),
            )
        except KeyError as exc:
            raise SourcesFileError(f"{path}: source #{number} has no {exc.args[0]}") from None
        if spec.category not in taxonomy.slugs:
            raise SourcesFileError(
                f"{path}: source #{number} has unknown category {spec.category!r}"
            )
        specs.append(spec)
    return specs


def parse_opml(data: bytes, taxonomy: Taxonomy, default_category: str) -> list[SourceSpec]:
    """Feeds from an OPML file. A `category` attribute (ours) or an enclosing outline whose
    text names a category sets the category."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SourcesFileError(f"not a valid OPML file: {exc}") from None
    specs: list[SourceSpec] = []

    def walk(node: ET.Element, inherited: str) -> None:
        for outline in node.findall("outline"):
            label = outline.get("text") or outline.get("title") or ""
            named = outline.get("category") or ""
            category = taxonomy.resolve(named) or taxonomy.resolve(label)
            current = category.slug if category else inherited
            url = outline.get("xmlUrl")
            if url:
                specs.append(
                    SourceSpec(
                        url=url,
                        name=label or url,
                        category=current,
                        language=outline.get("language", "en"),
                    )
                )
            walk(outline, current)

    body = root.find("body")
    if body is None:
        raise SourcesFileError("not a valid OPML file: no <body>")
    walk(body, default_category)
    return specs


def render_opml(specs: list[SourceSpec], taxonomy: Taxonomy) -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "ainews sources"
    body = ET.SubElement(root, "body")
    for category in taxonomy.categories:
        members = [s for s in specs if s.category == category.slug]
        if not members:
            continue
        group = ET.SubElement(body, "outline", text=category.label, category=category.slug)
        for spec in members:
            ET.SubElement(
                group,
                "outline",
                type="rss",
                text=spec.name,
                title=spec.name,
                xmlUrl=spec.url,
                category=spec.category,
                language=spec.language,
            )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
