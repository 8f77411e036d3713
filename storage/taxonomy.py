"""The category list: configuration (bot/defaults/categories.toml, or AINEWS_CATEGORIES_FILE),
not code. Storage owns it because summaries and subscriptions store its slugs; every layer reads
the same instance."""

from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    label: str
    aliases: tuple[str, ...]
    keywords: tuple[str, ...]


class TaxonomyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Taxonomy:
    categories: tuple[Category, ...]

    @classmethod
    def load(cls, path: Path) -> Taxonomy:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TaxonomyError(f"cannot read categories from {path}: {exc}") from None
        entries = data.get("category") or []
        if not entries:
            raise TaxonomyError(f"{path}: no [[category]] entries")
        categories = tuple(
            Category(
                slug=str(e["slug"]),
                label=str(e["label"]),
                aliases=tuple(str(a) for a in e.get("aliases", [])),
                keywords=tuple(str(k).lower() for k in e.get("keywords", [])),
            )
            for e in entries
        )
        if len({c.slug for c in categories}) != len(categories):
            raise TaxonomyError(f"{path}: duplicate category slug")
        return cls(categories)

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(c.slug for c in self.categories)

    def get(self, slug: str) -> Category:
        for category in self.categories:
            if category.slug == slug:
                return category
        raise KeyError(slug)

    def label_of(self, slug: str) -> str:
        """The heading of a category, or the slug itself for one no longer configured (rows
        stored before the list changed still need a name to show)."""
        return self.get(slug).label if slug in self.slugs else slug

    def order(self, slug: str) -> int:
        return self.slugs.index(slug) if slug in self.slugs else len(self.categories)

    def resolve(self, name: str) -> Category | None:
        """A category from its slug, label or a Japanese alias, as users type them."""
        wanted = unicodedata.normalize("NFKC", name).strip().lower()
        for category in self.categories:
            names = (category.slug, category.label, *category.aliases)
            if any(unicodedata.normalize("NFKC", n).lower() == wanted for n in names):
                return category
            label_text = category.label.split(" ", 1)[-1]
            if unicodedata.normalize("NFKC", label_text).lower() == wanted:
                return category
        return None
