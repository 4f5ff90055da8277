"""Creating tenants, saving their templates and describing them (``services.tenants``) on the in-memory
fakes: a bad spec or template is refused with every reason before the database is asked anything."""

from __future__ import annotations

import datetime as dt

import pytest

from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec, ValidationError
from tenant_worker.domain.records import Template, Tenant
from tenant_worker.domain.shards import shard_for, shard_queue
from tenant_worker.domain.templates import TemplateError
from tenant_worker.services.tenants import DEFAULT_TEMPLATE, create_tenant, describe_tenant, save_template
from tests.fakes import FakeStorage

SPEC = TenantSpec("acme", "Acme Fiber", "Europe/Amsterdam", "AcmeFiber")


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage()


def create(storage: FakeStorage, spec: TenantSpec = SPEC, template: str | None = None, shard_count: int = 16) -> Tenant:
    with storage() as tx:
        return create_tenant(tx, spec, template, shard_count=shard_count)


def templates_of(storage: FakeStorage, slug: str = "acme") -> list[Template]:
    with storage() as tx:
        return tx.catalog.templates(tx.catalog.find_tenant(slug).id)


def save(storage: FakeStorage, body: str, window: int | None = None, locale: str | None = None) -> None:
    with storage() as tx:
        save_template(tx, "acme", body, window, locale)


# create_tenant -----------------------------------------------------------------------------------------


def test_a_new_tenant_gets_the_default_template_and_a_shard_queue_of_the_configured_count(storage) -> None:
    tenants = [
        create(storage, TenantSpec(f"tenant-{n}", "Acme", "Europe/Amsterdam", "Acme"), shard_count=4) for n in range(8)
    ]

    assert [t.queue for t in tenants] == [shard_queue(shard_for(t.id, 4), 4) for t in tenants]
    assert templates_of(storage, "tenant-0") == [Template(None, None, DEFAULT_TEMPLATE)]


def test_a_tenant_created_with_a_template_gets_that_one_instead_of_the_default(storage) -> None:
    create(storage, template="Hi {customer_name}, pay {amount} {currency}.")

    # Saved in the new spelling: {amount} carries its currency now (migration 0013).
    assert templates_of(storage) == [Template(None, None, "Hi {customer_name}, pay {amount}.")]


def test_a_large_tenant_gets_a_queue_of_its_own(storage) -> None:
    tenant = create(storage, TenantSpec("big-isp", "Big ISP", "Europe/Berlin", "BigISP", dedicated=True))

    assert tenant.queue == "reminders.tenant.big-isp"


def test_the_spec_is_stored_normalised(storage) -> None:
    tenant = create(storage, TenantSpec("acme", "  Acme Fiber ", "Europe/Amsterdam", "AcmeFiber", windows=(1, 5, 3)))

    assert (tenant.name, tenant.windows, tenant.status) == ("Acme Fiber", (5, 3, 1), "active")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        pytest.param("Hi {customer}, pay now", "customer", id="unknown-placeholder"),
        pytest.param("Hi {customer_name, pay now", "{customer_name, pay now", id="unclosed-brace"),
    ],
)
def test_an_invalid_template_is_rejected_before_anything_is_written(storage, template: str, reason: str) -> None:
    storage.fail_next(at="statement")  # any database statement would strike this instead

    with pytest.raises(TemplateError) as refused:
        create(storage, template=template)

    assert reason in str(refused.value)
    assert storage.failures_left == 1
    assert storage.tables.tenants == {}


def test_a_default_template_too_long_for_max_segments_is_rejected_naming_it(storage) -> None:
    storage.fail_next(at="statement")

    with pytest.raises(TemplateError) as refused:
        create(storage, TenantSpec("acme", "Acme Fiber", "Europe/Amsterdam", "AcmeFiber", max_segments=1))

    [problem] = refused.value.problems
    assert problem.startswith("the default template can need ")
    assert "the tenant allows 1 (max_segments)" in problem
    assert storage.failures_left == 1


def test_an_invalid_spec_lists_every_problem_before_anything_is_written(storage) -> None:
    storage.fail_next(at="statement")
    spec = TenantSpec(
        "Acme!",
        " ",
        "Mars/Base",
        "Acme Fiber Networks",
        send_time=dt.time(23),
        sending_window=SendingWindow(dt.time(8), dt.time(21)),
    )

    with pytest.raises(ValidationError) as refused:
        create(storage, spec)

    assert len(refused.value.problems) == 5
    assert storage.failures_left == 1


def test_a_taken_slug_is_refused_and_the_existing_tenant_is_kept(storage) -> None:
    first = create(storage)

    with pytest.raises(ValidationError, match="a tenant with slug 'acme' already exists"):
        create(storage, TenantSpec("acme", "Other", "Asia/Tokyo", "Other"), template="Other {plan}")

    with storage() as tx:
        assert tx.catalog.find_tenant("acme") == first
    assert templates_of(storage) == [Template(None, None, DEFAULT_TEMPLATE)]


# save_template -----------------------------------------------------------------------------------------


def test_a_template_is_saved_for_its_window_and_locale_and_replaced_by_the_next_one(storage) -> None:
    create(storage)

    save(storage, "Nog {days_left} dagen, {customer_name}.", window=3, locale="nl")
    save(storage, "Nog maar {days_left} dagen!", window=3, locale="nl")
    save(storage, "Last day, {customer_name}!", window=1)

    assert templates_of(storage) == [
        Template(1, None, "Last day, {customer_name}!"),
        Template(3, "nl", "Nog maar {days_left} dagen!"),
        Template(None, None, DEFAULT_TEMPLATE),
    ]


def test_a_template_for_a_window_the_tenant_does_not_have_is_rejected(storage) -> None:
    create(storage)

    with pytest.raises(TemplateError) as refused:
        save(storage, "A week left, {customer_name}.", window=7)

    assert refused.value.problems == ["window 7 is not one of the tenant's windows (5, 3, 1)"]
    assert templates_of(storage) == [Template(None, None, DEFAULT_TEMPLATE)]


def test_a_template_too_long_for_the_tenants_max_segments_is_rejected(storage) -> None:
    create(storage, TenantSpec("acme", "Acme", "Europe/Amsterdam", "Acme", max_segments=1), template="Pay {amount}.")

    with pytest.raises(TemplateError) as refused:
        save(storage, "Dear {customer_name}, " + "please pay your bill. " * 6)

    [problem] = refused.value.problems
    assert "the tenant allows 1 (max_segments): shorten the template or raise max_segments" in problem
    assert templates_of(storage) == [Template(None, None, "Pay {amount}.")]


def test_a_template_that_does_not_parse_is_rejected_naming_the_placeholder(storage) -> None:
    create(storage)

    with pytest.raises(TemplateError, match="phone"):
        save(storage, "We will call {phone}")


def test_a_template_for_an_unknown_tenant_is_a_clear_error(storage) -> None:
    with pytest.raises(ValidationError, match="unknown tenant 'acme'"):
        save(storage, "Hi {customer_name}")


# describe_tenant ---------------------------------------------------------------------------------------


def test_a_tenant_is_described_with_its_local_date_and_templates(storage) -> None:
    spec = TenantSpec(
        "acme",
        "Acme Fiber",
        "America/Los_Angeles",
        "AcmeFiber",
        locale="en-US",
        windows=(1, 7, 3),
        send_time=dt.time(9, 30),
        sending_window=SendingWindow(dt.time(8), dt.time(20)),
        rate_per_second=2.5,
        max_segments=2,
    )
    tenant = create(storage, spec, template="Hi {customer_name}, {days_left} days left.")
    save(storage, "Last day!", window=1, locale="en-US")
    # 2026-03-03 05:00 UTC is still the evening of 2 March in Los Angeles.
    now = dt.datetime(2026, 3, 3, 5, 0, tzinfo=dt.UTC)

    with storage() as tx:
        described = describe_tenant(tx, tenant, now)

    assert described == {
        "slug": "acme",
        "name": "Acme Fiber",
        "timezone": "America/Los_Angeles",
        "locale": "en-US",
        "originator": "AcmeFiber",
        "windows": [7, 3, 1],
        "status": "active",
        "send_time": "09:30",
        "sending_window": "08:00-20:00",
        "queue": tenant.queue,
        "rate_per_second": 2.5,
        "max_segments": 2,
        "date_style": "long",
        "normalize_text": False,
        "local_today": "2026-03-02",
        "templates": [
            {"window": 1, "locale": "en_US", "body": "Last day!"},  # stored in CLDR's spelling
            {"window": None, "locale": None, "body": "Hi {customer_name}, {days_left} days left."},
        ],
    }
