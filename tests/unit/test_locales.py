"""Every customer reads the reminder in their own language: dates, money and plurals as CLDR writes them.

Table tests per locale (the acceptance list of issue 14) through the real send-path renderer
(``services.rendering.build_sms``), then the template selection order, plural validation at save time
and a property: whatever the locale, amount and date, formatting never turns a GSM-7 SMS into UCS-2.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal

import pytest
from babel import localedata
from hypothesis import given, settings
from hypothesis import strategies as st

from tenant_worker.adapters import cldr
from tenant_worker.domain.records import SendJob, Template, Tenant
from tenant_worker.domain.templates import GSM_7, UCS_2, TemplateError, is_gsm_char, validate_template
from tenant_worker.services.rendering import ChosenTemplate, build_sms, template_selector

TODAY = dt.date(2027, 3, 2)


def tenant(locale: str = "nl_NL", date_style: str = "long", normalize_text: bool = False) -> Tenant:
    return Tenant(
        id=1, slug="acme", name="Acme", timezone="Europe/Brussels", locale=locale, originator="Acme",
        windows=(5, 3, 1), status="active", queue="reminders.shard.0", rate_per_second=None, max_segments=3,
        send_time=dt.time(10), window_start=dt.time(8), window_end=dt.time(21), date_style=date_style,
        normalize_text=normalize_text,
    )  # fmt: skip


def job(days: int = 3, amount: str = "1249.50", currency: str = "EUR", locale: str | None = None) -> SendJob:
    return SendJob(
        reminder_id=1, window_days=days, expires_on=TODAY + dt.timedelta(days=days), customer_name="Ann",
        phone="+32470000000", plan="Fiber", amount=Decimal(amount), currency=currency, locale=locale,
    )  # fmt: skip


def render(locale: str, body: str, days: int = 3, *, style: str = "long", currency: str = "EUR") -> tuple[str, str]:
    rendered = build_sms(tenant(locale, style), ChosenTemplate(body, locale), job(days, currency=currency), TODAY)
    return rendered.body, rendered.encoding


# locale, long date of 2027-03-05, medium, short, 1249.50 EUR, plural field, {days: form}, encoding
TABLE = [
    ("nl_NL", "5 maart 2027", "5 mrt 2027", "05-03-2027", "€ 1.249,50", "{days_left|dag|dagen}",
     {1: "dag", 3: "dagen", 0: "dagen"}, GSM_7),
    ("nl_BE", "5 maart 2027", "5 mrt 2027", "5/03/2027", "€ 1.249,50", "{days_left|dag|dagen}",
     {1: "dag", 2: "dagen"}, GSM_7),
    ("fr_BE", "5 mars 2027", "5 mars 2027", "5/03/27", "1 249,50 €", "{days_left|jour|jours}",
     {0: "jour", 1: "jour", 2: "jours", 5: "jours"}, GSM_7),
    ("de_DE", "5. März 2027", "05.03.2027", "05.03.27", "1.249,50 €", "{days_left|Tag|Tage}",
     {1: "Tag", 3: "Tage"}, GSM_7),
    ("en_GB", "5 March 2027", "5 Mar 2027", "05/03/2027", "€1,249.50", "{days_left|day|days}",
     {1: "day", 3: "days"}, GSM_7),
    ("en_US", "March 5, 2027", "Mar 5, 2027", "3/5/27", "€1,249.50", "{days_left|day|days}",
     {1: "day", 3: "days"}, GSM_7),
    # Polish: one (1), few (2-4, 22-24), many (5-21, 25-31) for whole numbers.
    ("pl_PL", "5 marca 2027", "5 mar 2027", "5.03.2027", "1 249,50 €",
     "{days_left|dzień roboczy|dni robocze|dni roboczych}",
     {1: "dzień roboczy", 2: "dni robocze", 5: "dni roboczych", 22: "dni robocze", 25: "dni roboczych"}, GSM_7),
    # Arabic: zero, one, two, few (3-10), many (11-99), other (100-102); UCS-2, so CLDR's own marks stay.
    ("ar", "5 مارس 2027", "05\u200f/03\u200f/2027", "5\u200f/3\u200f/2027", "\u200f1,249.50\xa0€",
     "{days_left|صفر أيام|يوم واحد|يومان|أيام|يومًا|يوم}",
     {0: "صفر أيام", 1: "يوم واحد", 2: "يومان", 3: "أيام", 11: "يومًا", 100: "يوم"}, UCS_2),
]  # fmt: skip


@pytest.mark.parametrize(("locale", "long", "medium", "short", "money", "field", "forms", "encoding"), TABLE)
def test_dates_money_and_plurals_read_as_cldr_writes_them(
    locale: str, long: str, medium: str, short: str, money: str, field: str, forms: dict[int, str], encoding: str
) -> None:
    body = "{expires_on} | {amount} | " + field
    for style, date in (("long", long), ("medium", medium), ("short", short)):
        text, _ = render(locale, body, 3, style=style)
        assert text.split(" | ")[0] == date, style
    text, got_encoding = render(locale, body, 3)
    assert text.split(" | ")[1] == money
    assert got_encoding == encoding
    for days, form in forms.items():
        assert render(locale, "{days_left|" + field[len("{days_left|") :], days)[0] == form, days


def test_an_sms_that_is_ucs2_anyway_keeps_the_values_as_cldr_writes_them() -> None:
    # "ń" is not GSM-7: the SMS costs UCS-2 whatever the spaces, so CLDR's no-break spaces stay.
    text, encoding = render("pl_PL", "Zostało {days_left} {days_left|dzień|dni|dni}: {amount}", 1)
    assert (text, encoding) == ("Zostało 1 dzień: 1\xa0249,50\xa0€", UCS_2)


def test_the_raw_values_stay_available() -> None:
    text, _ = render("fr_BE", "{expires_on_iso} {amount_raw} {currency} {days_left}")
    assert text == "2027-03-05 1249.50 EUR 3"


@pytest.mark.parametrize(
    ("locale", "currency", "money"),
    [("en_US", "USD", "$1,249.50"), ("nl_NL", "USD", "US$ 1.249,50"), ("en_GB", "GBP", "£1,249.50"),
     ("de_CH", "CHF", "CHF 1'249.50"), ("fr_FR", "XXX", "1 249,50 ¤")],
)  # fmt: skip
def test_money_is_written_with_the_currency_as_the_locale_writes_it(locale: str, currency: str, money: str) -> None:
    assert render(locale, "{amount}", currency=currency) == (money, GSM_7)


def test_a_gsm_template_stays_gsm_although_cldr_uses_no_break_spaces() -> None:
    text, encoding = render("fr_BE", "Payez {amount} avant le {expires_on}.")
    assert (text, encoding) == ("Payez 1 249,50 € avant le 5 mars 2027.", GSM_7)
    assert "\xa0" in cldr.format_money(Decimal("1249.50"), "EUR", "fr_BE")  # what CLDR wrote


def test_the_tenants_own_text_is_normalised_only_when_it_asks() -> None:
    body = "Don\u2019t forget: \u201c{plan}\u201d \u2013 {days_left|day|days} left\u2026"  # pasted from Word
    plain = build_sms(tenant("en_GB"), ChosenTemplate(body, "en_GB"), job(3), TODAY)
    normalised = build_sms(tenant("en_GB", normalize_text=True), ChosenTemplate(body, "en_GB"), job(3), TODAY)
    assert (plain.body, plain.encoding) == (body.replace("{plan}", "Fiber").replace("{days_left|day|days}", "days"),
                                            UCS_2)  # fmt: skip
    assert (normalised.body, normalised.encoding) == ('Don\'t forget: "Fiber" - days left...', GSM_7)


def test_customer_names_are_never_rewritten() -> None:
    rendered = build_sms(tenant("en_GB", normalize_text=True), ChosenTemplate("Hi {customer_name}", "en_GB"),
                         SendJob(1, 3, TODAY, "O\u2019Brien", None, "Fiber", Decimal(1), "EUR"), TODAY)  # fmt: skip
    assert rendered.body == "Hi O\u2019Brien"


TEMPLATES = [
    Template(None, None, "default"),
    Template(None, "nl", "nl any window"),
    Template(3, None, "window 3 any locale"),
    Template(None, "fr", "fr any window"),
    Template(3, "fr_BE", "fr_BE window 3"),
    Template(None, "de-de", "de_DE spelled with a dash"),
]


@pytest.mark.parametrize(
    ("customer", "window", "body", "formatted_as"),
    [
        (None, 5, "nl any window", "nl_BE"),  # the tenant's locale nl_BE -> nl
        (None, 3, "window 3 any locale", "nl_BE"),  # as before: (window, any) beats (any, tenant locale)
        ("nl_BE", 5, "nl any window", "nl_BE"),
        ("nl_NL", 3, "window 3 any locale", "nl_NL"),  # same language as the tenant: formatted as the customer's
        ("fr_BE", 3, "fr_BE window 3", "fr_BE"),
        ("fr_BE", 5, "fr any window", "fr_BE"),  # fr_BE -> fr, before the tenant's templates
        ("fr_FR", 3, "fr any window", "fr_FR"),  # the customer's language wins over the window
        ("de_DE", 1, "de_DE spelled with a dash", "de_DE"),
        ("en_US", 5, "nl any window", "nl_BE"),  # no English text: the tenant's, formatted as its text is
        ("en_US", 3, "window 3 any locale", "nl_BE"),
    ],
)
def test_the_customers_locale_picks_the_template_then_its_parent_then_the_tenants(
    customer: str | None, window: int, body: str, formatted_as: str
) -> None:
    select = template_selector(tenant("nl_BE"), TEMPLATES)
    assert select(window, customer) == ChosenTemplate(body, formatted_as)


def test_a_plural_field_needs_the_locales_number_of_forms_when_saved() -> None:
    validate_template("{days_left|dzień|dni|dni}", cldr.plural_rule("pl_PL"))  # one, few, many
    validate_template("{days_left|dzień|dni|dni|dnia}", cldr.plural_rule("pl_PL"))  # ... and other
    with pytest.raises(TemplateError) as caught:
        validate_template("nog {days_left} {days_left|dag|dagen}", cldr.plural_rule("pl"))
    assert caught.value.problems == [
        "plural field {days_left|dag|dagen} has 2 forms; locale pl needs 3 (one, few, many) or "
        "4 (one, few, many, other), in that order"
    ]
    with pytest.raises(TemplateError, match=r"locale ar needs 6 \(zero, one, two, few, many, other\)"):
        validate_template("{days_left|يوم|يومان}", cldr.plural_rule("ar"))


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{plan|a|b}", "plural field {plan|a|b} must choose by a number placeholder (days_left)"),
        ("{days_left|a.b|c[0]}", "plural forms in {days_left|a.b|c[0]} must not contain [ ]"),
        ("{days_left||}", "plural field {days_left||} has no form to write"),
        ("{days_left|day|days!r}", "conversion !r in {days_left|day|days!r} is not allowed"),
        ("{days_left|day|__class__:x}", "format spec :x in {days_left|day|__class__:x} is not allowed"),
    ],
)
def test_plural_fields_stay_safe(template: str, problem: str) -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template(template, cldr.plural_rule("en"))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_an_empty_form_writes_nothing() -> None:
    assert render("en_US", "{days_left} day{days_left||s}", 1)[0] == "1 day"
    assert render("en_US", "{days_left} day{days_left||s}", 2)[0] == "2 days"


def test_unknown_locales_are_refused_and_spellings_are_canonical() -> None:
    assert cldr.canonical_locale("nl-be") == "nl_BE"
    assert cldr.fallback_chain("zh-Hant-TW") == ("zh_Hant_TW", "zh_Hant", "zh")
    for name in ("xx", "nl_XX", "", "../etc", "en_US.UTF-8"):
        assert not cldr.is_known_locale(name), name


LOCALES = sorted(localedata.locale_identifiers())
GSM_TEMPLATE = "Hi {customer_name}, {org_name}: pay {amount} before {expires_on} ({days_left} days)."
# Currencies GSM-7 can write in every locale that writes them with Latin letters.
GSM_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "XXX")


@settings(max_examples=300, deadline=None)
@given(
    locale=st.sampled_from(LOCALES),
    style=st.sampled_from(("short", "medium", "long")),
    day=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    amount=st.decimals(0, "9999999999.99", places=2),
    currency=st.sampled_from(GSM_CURRENCIES),
)
def test_formatting_never_turns_a_gsm_template_into_ucs2(
    locale: str, style: str, day: dt.date, amount: Decimal, currency: str
) -> None:
    """Only the locale's own letters and digits (Cyrillic month names, Arabic-Indic digits) may make an
    SMS UCS-2; the spaces, marks, quotes and minus signs CLDR formats with never do."""
    reminder = SendJob(1, 3, day, "Ann", None, "Fiber", amount, currency)
    rendered = build_sms(tenant(locale, style), ChosenTemplate(GSM_TEMPLATE, locale), reminder, day)
    if rendered.encoding == UCS_2:
        # Letters, digits and combining marks of the locale's script ("Cn": a script newer than this
        # Python's Unicode tables, e.g. Sunuwar) are what may force UCS-2, never a space or a sign.
        outside = [char for char in rendered.body if not is_gsm_char(char)]
        assert any(unicodedata.category(char)[0] in "LNM" or unicodedata.category(char) == "Cn" for char in outside), (
            locale,
            rendered.body,
        )
