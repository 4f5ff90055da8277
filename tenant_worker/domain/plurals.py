"""Plural forms in templates: ``{days_left|dag|dagen}`` picks a word by the locale's CLDR plural rule.

A plural field names a number placeholder and then one form per plural category of the template's
locale, separated by ``|``, in CLDR's order (zero, one, two, few, many, other). It writes only the
chosen form; the number itself is ``{days_left}``: ``nog {days_left} {days_left|dag|dagen}``. Give
either one form per category a whole number of days can take (Dutch and English: one, other; Polish:
one, few, many; Arabic: zero, one, two, few, many, other) or one per category of the locale (Polish
also has "other", for fractions): the count is checked when the template is saved.

The rule itself (which category a number is in) is CLDR data that Babel knows; this module only holds
what the templates need of it, so the domain stays free of third-party imports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

CLDR_ORDER = ("zero", "one", "two", "few", "many", "other")
"""The order a plural field lists its forms in."""

PLURAL_PLACEHOLDERS = frozenset({"days_left"})
"""Placeholders holding a whole number, the only ones a plural field may choose by."""

_FORBIDDEN_IN_FORMS = frozenset("{}[]:!")


@dataclass(frozen=True)
class PluralRule:
    """The CLDR plural categories of one locale and the function that puts a number in one.

    ``categories`` are all the locale's categories, ``whole`` those a whole number reaches, both in
    :data:`CLDR_ORDER`. ``longest`` makes :meth:`pick` choose the longest form whatever the number,
    for the worst-case length of a template.
    """

    locale: str
    categories: tuple[str, ...]
    whole: tuple[str, ...]
    category_of: Callable[[int], str]
    longest: bool = False

    @property
    def form_counts(self) -> tuple[int, ...]:
        """How many forms a plural field may give: one per whole-number category, or one per category."""
        return tuple(dict.fromkeys((len(self.whole), len(self.categories))))

    def pick(self, forms: Sequence[str], number: int) -> str:
        """The form of ``forms`` for ``number`` (forms already checked by :func:`plural_problems`)."""
        if self.longest:
            return max(forms, key=len)
        names = self.whole if len(forms) == len(self.whole) else self.categories
        chosen = dict(zip(names, forms, strict=False)).get(self.category_of(number))
        return forms[-1] if chosen is None else chosen

    def worst_case(self) -> PluralRule:
        """This rule, choosing the longest form (for worst-case lengths)."""
        return replace(self, longest=True)

    def expected(self) -> str:
        """The accepted form lists, for an error message: ``2 (one, other)``."""
        lists = [f"{len(names)} ({', '.join(names)})" for names in dict.fromkeys((self.whole, self.categories))]
        return " or ".join(lists)


LONGEST_FORM = PluralRule(
    locale="any", categories=CLDR_ORDER, whole=CLDR_ORDER, category_of=lambda _number: "other", longest=True
)
"""Picks the longest form of any plural field: the worst case of a template whose locale is unknown."""


def split_plural_field(field: str) -> tuple[str, list[str]] | None:
    """``"days_left|dag|dagen"`` -> ``("days_left", ["dag", "dagen"])``; None for a plain field."""
    if "|" not in field:
        return None
    name, *forms = field.split("|")
    return name, forms


def plural_problems(source: str, name: str, forms: Sequence[str], rule: PluralRule | None) -> list[str]:
    """Everything wrong with the plural field ``source``; the form count only when the locale is known."""
    problems: list[str] = []
    if name not in PLURAL_PLACEHOLDERS:
        allowed = ", ".join(sorted(PLURAL_PLACEHOLDERS))
        problems.append(f"plural field {source} must choose by a number placeholder ({allowed})")
    bad = sorted({char for form in forms for char in form if char in _FORBIDDEN_IN_FORMS})
    if bad:
        problems.append(f"plural forms in {source} must not contain {' '.join(bad)}")
    if not any(form.strip() for form in forms):
        problems.append(f"plural field {source} has no form to write")
    if rule is not None and not rule.longest and len(forms) not in rule.form_counts:
        problems.append(
            f"plural field {source} has {len(forms)} form{'s' if len(forms) != 1 else ''}; "
            f"locale {rule.locale} needs {rule.expected()}, in that order"
        )
    return problems
