"""Phone numbers, validated and normalised to E.164 with Google's ``phonenumbers`` library."""

from __future__ import annotations

import functools

import phonenumbers


class InvalidPhoneError(ValueError):
    """The text is not a valid, dialable mobile or fixed number."""


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    """Return ``raw`` as E.164 (``+31612345678``) or raise :class:`InvalidPhoneError` saying why.

    Numbers without a leading ``+`` need ``default_region`` (an ISO country code such as ``NL``).
    """
    text = raw.strip()
    if not text:
        raise InvalidPhoneError("phone number is empty")
    try:
        number = phonenumbers.parse(text, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            if text.startswith("+"):
                raise InvalidPhoneError("phone number has an unknown country code") from None
            raise InvalidPhoneError("phone number needs a +country code (or pass a default region)") from None
        raise InvalidPhoneError(f"phone number cannot be parsed ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError("phone number is not a valid number for its country")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# Checked for every SMS just before sending; parsing with phonenumbers costs more CPU than the rest of
# a send's bookkeeping, and the answer for a given string never changes.
@functools.lru_cache(maxsize=65536)
def is_valid_e164(phone: str) -> bool:
    """True when ``phone`` is a valid number already in E.164 form (checked again just before sending)."""
    try:
        return normalize_phone(phone) == phone
    except InvalidPhoneError:
        return False
