"""Keeping SMS text in the GSM 03.38 alphabet: which characters leave it, and their GSM-7 stand-ins.

One character outside GSM-7 turns a whole SMS into UCS-2: 70 characters per segment instead of 160, so
the same reminder can cost twice as much. CLDR's formats bring such characters in on their own (Babel
writes "1 249,50 €" with U+202F and U+00A0 no-break spaces, some locales use typographic quotes and the
Unicode minus), and word processors bring curly apostrophes into a tenant's text. :func:`normalize_gsm`
replaces those typographic characters by what they stand for in GSM-7 and leaves everything else
alone: letters of other scripts (Arabic, Cyrillic, Chinese) have no GSM-7 equivalent and stay UCS-2.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tenant_worker.domain.templates import is_gsm_char

# Typographic characters and what they read as in GSM-7. Deliberately no transliteration of letters
# (no "ł" -> "l"): that would change words; only spacing, punctuation and invisible marks are mapped.
GSM_EQUIVALENTS: Mapping[str, str] = MappingProxyType(
    {
        "\u00a0": " ",  # no-break space (CLDR: "€ 49,00", "49,00 €")
        "\u2007": " ",  # figure space
        "\u2009": " ",  # thin space
        "\u202f": " ",  # narrow no-break space (CLDR: fr/pl thousands, "1 249,50")
        "\u2002": " ",  # en space
        "\u2003": " ",  # em space
        "\u200b": "",  # zero-width space
        "\u200e": "",  # left-to-right mark
        "\u200f": "",  # right-to-left mark
        "\u061c": "",  # Arabic letter mark
        "\u2060": "",  # word joiner
        "\ufeff": "",  # zero-width no-break space (byte order mark)
        "\u00ad": "",  # soft hyphen
        "\u2018": "'",  # left single quotation mark
        "\u2019": "'",  # right single quotation mark, the curly apostrophe
        "\u201a": "'",  # single low-9 quotation mark
        "\u2032": "'",  # prime
        "\u201c": '"',  # left double quotation mark
        "\u201d": '"',  # right double quotation mark
        "\u201e": '"',  # double low-9 quotation mark (de, nl, pl)
        "\u2033": '"',  # double prime
        "\u00ab": '"',  # left guillemet (fr)
        "\u00bb": '"',  # right guillemet (fr)
        "\u2039": "'",  # single left guillemet
        "\u203a": "'",  # single right guillemet
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2212": "-",  # minus sign (CLDR negative numbers in some locales)
        "\u060c": ",",  # Arabic comma (CLDR grouping separator of ks_Arab, bgn...)
        "\u066b": ".",  # Arabic decimal separator
        "\u066c": ",",  # Arabic thousands separator
        "\u2e41": ",",  # reversed comma (ff_Adlm grouping separator)
        "\u2026": "...",  # horizontal ellipsis
        "\u2022": "-",  # bullet
        "\u00b7": ".",  # middle dot
        "\u2024": ".",  # one dot leader
        "\u02bc": "'",  # modifier letter apostrophe
        "\u00b4": "'",  # acute accent used as an apostrophe
        "`": "'",  # grave accent used as an apostrophe
        "\t": " ",
    }
)


def normalize_gsm(text: str) -> str:
    """``text`` with every typographic character of :data:`GSM_EQUIVALENTS` replaced by its GSM-7
    stand-in; characters with no GSM-7 equivalent (other scripts, emoji) are kept as they are."""
    if all(is_gsm_char(char) for char in text):
        return text
    return "".join(char if is_gsm_char(char) else GSM_EQUIVALENTS.get(char, char) for char in text)


def non_gsm_chars(text: str) -> list[str]:
    """The distinct characters of ``text`` outside GSM 03.38, in order of appearance: what forces
    UCS-2 (the template preview names them so the tenant can fix the text)."""
    return list(dict.fromkeys(char for char in text if not is_gsm_char(char)))


def describe_char(char: str) -> str:
    """A character as a tenant can find it: ``'\u2019' U+2019`` (the curly apostrophe itself, quoted)."""
    return f"{char!r} U+{ord(char):04X}"
