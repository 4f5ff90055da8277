"""The SQL of the customer import (``adapters.customer_sync``), statement by statement.

Kept apart from the code that runs it so each can be read in one sitting. The statements work on two
temporary tables that live as long as the import's transaction: ``STAGING`` (the validated rows) and
``KEPT`` (rows recognised as unchanged by their source digest). ``{customers}`` and ``{probe}`` in some
statements are filled by the caller: a join for a file, an index probe per row for a small import.
"""

from __future__ import annotations

STAGING = "customer_import_staging"
KEPT = "customer_import_kept"
ABSENT = "customer_import_absent"
COLUMNS = (
    "line",
    "customer_ref",
    "name",
    "phone",
    "opted_out",
    "locale",
    "subscription_ref",
    "plan",
    "amount",
    "currency",
    "expires_on",
    "status",
    "digest",
)

CREATE = f"""
    CREATE TEMP TABLE {STAGING} (
        line bigint NOT NULL, customer_ref text NOT NULL, name text NOT NULL, phone text,
        opted_out boolean NOT NULL, locale text, subscription_ref text, plan text NOT NULL,
        amount numeric(12, 2) NOT NULL, currency text NOT NULL, expires_on date NOT NULL, status text NOT NULL,
        digest bigint
    ) ON COMMIT DROP
"""
# A kept row's line; NULL for an unchanged one (copied only for a full sync, to mark it present).
CREATE_KEPT = f"CREATE TEMP TABLE {KEPT} (line bigint, digest bigint NOT NULL) ON COMMIT DROP"

# What a row's subscription state hashes to: computed over a staged row when it is merged and over the
# stored columns by ``unchanged_digests``. Each value is hashed by its type's own hash function, which
# gives a staged text the hash of the same stored varchar (migration 0014: hashing the row's text
# cost 0.5 s more per 1,000,000 rows).
STATE = (
    "hash_record_extended(ROW({0}name, {0}phone, {0}opted_out, {0}locale,"
    " {1}plan, {1}amount, {1}currency, {1}expires_on, {1}status), 0)"
)

# Run on psycopg's own cursor (hence its placeholder), which fetches the digests in binary.
UNCHANGED_DIGESTS = f"""
    SELECT sub.import_digest FROM subscriptions sub
      JOIN customers c ON c.tenant_id = sub.tenant_id AND c.id = sub.customer_id
     WHERE sub.tenant_id = %(tenant_id)s AND sub.import_digest IS NOT NULL
       AND sub.removed_at IS NULL AND c.removed_at IS NULL
       AND sub.import_state = {STATE.format("c.", "sub.")}
"""

# The kept rows (those of a customer the file also stages) are staged again from the stored rows they
# name, and leave the kept table; the file is then checked against itself as if they had been read.
# From the staged customers through indexes (nested loops, which the import otherwise turns off): a 1%
# re-import of 1,000,000 rows must not join them all.
MATERIALIZE = f"""
    WITH concerned AS (
        SELECT k.line, k.digest, sub.id AS subscription_id
          FROM (SELECT DISTINCT customer_ref FROM {STAGING}) t
          JOIN customers c ON c.tenant_id = :tenant_id AND c.external_ref = t.customer_ref
          JOIN subscriptions sub ON sub.tenant_id = :tenant_id AND sub.customer_id = c.id
          JOIN {KEPT} k ON k.digest = sub.import_digest),
    taken AS (
        INSERT INTO {STAGING} ({", ".join(COLUMNS)})
        SELECT k.line, c.external_ref, c.name, c.phone, c.opted_out, c.locale, sub.external_ref, sub.plan, sub.amount,
               sub.currency, sub.expires_on, sub.status, k.digest
          FROM concerned k
          JOIN subscriptions sub ON sub.tenant_id = :tenant_id AND sub.id = k.subscription_id
          JOIN customers c ON c.tenant_id = :tenant_id AND c.id = sub.customer_id
        RETURNING line)
    DELETE FROM {KEPT} WHERE line IN (SELECT line FROM taken)
"""

# Later rows repeating a (customer, subscription) key, and rows whose customer details differ from
# the customer's first row: the file contradicts itself there, so those rows are rejected.
REJECTS = f"""
    SELECT line, customer_ref, subscription_ref, first_line, duplicate FROM (
        SELECT line, customer_ref, subscription_ref,
               min(line) OVER (PARTITION BY customer_ref, subscription_ref) AS first_line,
               true AS duplicate
          FROM {STAGING}) AS d
     WHERE line <> first_line
    UNION ALL
    SELECT line, customer_ref, subscription_ref, first_line, false FROM (
        SELECT line, customer_ref, subscription_ref,
               (name, phone, opted_out, locale) IS DISTINCT FROM
                   (first_value(name) OVER w, first_value(phone) OVER w, first_value(opted_out) OVER w,
                    first_value(locale) OVER w) AS differs,
               first_value(line) OVER w AS first_line
          FROM {STAGING}
        WINDOW w AS (PARTITION BY customer_ref ORDER BY line)) AS c
     WHERE differs
     ORDER BY line, duplicate DESC
"""

# How a statement finds each staged row's customer: a join for a file (hashed, with nested loops off),
# or, for a small import, an index probe per staged row. LATERAL with OFFSET 0 is never flattened into
# a join, so the probe stays per row even when the statistics of a freshly loaded tenant make walking
# its customers look cheap (with nested loops on, that walk would be repeated per staged row).
JOIN_CUSTOMERS = {
    False: "JOIN customers c ON c.tenant_id = :tenant_id AND c.external_ref = s.customer_ref",
    True: """CROSS JOIN LATERAL (SELECT id FROM customers
                                  WHERE tenant_id = :tenant_id AND external_ref = s.customer_ref OFFSET 0) AS c""",
}
LEFT_JOIN_CUSTOMERS = {
    False: "LEFT JOIN customers c ON c.tenant_id = :tenant_id AND c.external_ref = s.customer_ref",
    True: """LEFT JOIN LATERAL (SELECT id, name, phone, opted_out, locale, removed_at FROM customers
                                 WHERE tenant_id = :tenant_id AND external_ref = s.customer_ref OFFSET 0) AS c
             ON true""",
}

# How it finds the stored subscription of each staged row (as ``{alias}``), once it has the customer.
# The probe names the customer alone: with the tenant too, stale statistics right after a bulk load made
# PostgreSQL AND the tenant's whole index into every probe (20,000 probes of a 1,000,000-row tenant ran
# for minutes), and the customer is the tenant's already.
LEFT_JOIN_SUBSCRIPTION = {
    False: """LEFT JOIN subscriptions {alias} ON {alias}.tenant_id = :tenant_id AND {alias}.customer_id = c.id
                                      AND {alias}.external_ref IS NOT DISTINCT FROM s.subscription_ref""",
    True: """LEFT JOIN LATERAL (SELECT * FROM subscriptions
                                 WHERE customer_id = c.id AND external_ref IS NOT DISTINCT FROM s.subscription_ref
                                OFFSET 0) AS {alias} ON true""",
}

# The same for a NOT EXISTS: with OFFSET 0 it is not turned into a (hashed) anti-join but probed per row.
PROBE = {False: "", True: "OFFSET 0"}

# Each staged row against the stored customer and subscription it names.
CLASSIFIED = f"""
    SELECT s.line,
           s.customer_ref || coalesce('/' || s.subscription_ref, '') AS label,
           CASE WHEN sub.id IS NULL THEN 'created'
                WHEN (c.name, c.phone, c.opted_out, c.locale, c.removed_at IS NULL,
                      sub.plan, sub.amount, sub.currency, sub.expires_on, sub.status, sub.removed_at IS NULL)
                     IS DISTINCT FROM
                     (s.name, s.phone, s.opted_out, s.locale, true,
                      s.plan, s.amount, s.currency, s.expires_on, s.status, true) THEN 'updated'
                ELSE 'unchanged' END AS kind,
           sub.id IS NOT NULL AND sub.expires_on <> s.expires_on AS renewed
      FROM {STAGING} s
      {{customers}}
      {{subscription}}
"""

PLAN = f"""
    SELECT kind, renewed, count(*) AS n,
           (array_agg(line ORDER BY line))[1:5] AS lines, (array_agg(label ORDER BY line))[1:5] AS labels
      FROM ({CLASSIFIED}) AS k
     GROUP BY kind, renewed
"""

# The tenant's subscriptions a full sync removes: not removed yet, and absent from the file.
ABSENT_SUBSCRIPTIONS = f"""
    SELECT sub.id, c.external_ref || coalesce('/' || sub.external_ref, '') AS label
      FROM subscriptions sub
      JOIN customers c ON c.tenant_id = sub.tenant_id AND c.id = sub.customer_id
     WHERE sub.tenant_id = :tenant_id AND sub.removed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM {STAGING} s
                        WHERE s.customer_ref = c.external_ref
                          AND s.subscription_ref IS NOT DISTINCT FROM sub.external_ref)
       AND NOT EXISTS (SELECT 1 FROM {KEPT} k WHERE k.digest = sub.import_digest)
"""

# Kept for the transaction: the plan counts them, and the removal removes exactly those (computing them
# twice cost a 1,000,000-row full sync 1.2 s more).
CREATE_ABSENT = f"CREATE TEMP TABLE {ABSENT} ON COMMIT DROP AS {ABSENT_SUBSCRIPTIONS}"

ACTIVE = "SELECT count(*) FROM subscriptions WHERE tenant_id = :tenant_id AND removed_at IS NULL"

MERGE_CUSTOMERS = f"""
    INSERT INTO customers AS c (tenant_id, external_ref, name, phone, opted_out, locale)
    SELECT DISTINCT ON (customer_ref) :tenant_id, customer_ref, name, phone, opted_out, locale
      FROM {STAGING} s
     WHERE NOT EXISTS (SELECT 1 FROM customers old
                        WHERE old.tenant_id = :tenant_id AND old.external_ref = s.customer_ref
                          AND old.removed_at IS NULL
                          AND (old.name, old.phone, old.opted_out, old.locale)
                              IS NOT DISTINCT FROM (s.name, s.phone, s.opted_out, s.locale)
                       {{probe}})
     ORDER BY customer_ref, line
    ON CONFLICT (tenant_id, external_ref) DO UPDATE
       SET name = EXCLUDED.name, phone = EXCLUDED.phone, opted_out = EXCLUDED.opted_out, locale = EXCLUDED.locale,
           removed_at = NULL, updated_at = now()
     WHERE (c.name, c.phone, c.opted_out, c.locale, c.removed_at IS NULL)
           IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.phone, EXCLUDED.opted_out, EXCLUDED.locale, true)
"""

# A subscription whose values stay the same but whose source digest or state hash is new (the row
# was written differently, or first imported before migration 0011) gets them without a new
# ``updated_at``: its data did not change.
SUBSCRIPTION_DATA = "{0}plan, {0}amount, {0}currency, {0}expires_on, {0}status, {0}removed_at IS NULL"
MERGE_SUBSCRIPTIONS = f"""
    INSERT INTO subscriptions AS sub (tenant_id, customer_id, external_ref, plan, amount, currency, expires_on, status,
                                      import_digest, import_state)
    SELECT :tenant_id, c.id, s.subscription_ref, s.plan, s.amount, s.currency, s.expires_on, s.status,
           s.digest, {STATE.format("s.", "s.")}
      FROM {STAGING} s
      {{customers}}
      {{subscription}}
     WHERE old.id IS NULL
        OR ({SUBSCRIPTION_DATA.format("old.")}, old.import_digest, old.import_state)
           IS DISTINCT FROM (s.plan, s.amount, s.currency, s.expires_on, s.status, true,
                             s.digest, {STATE.format("s.", "s.")})
    ON CONFLICT (customer_id, external_ref) DO UPDATE
       SET plan = EXCLUDED.plan, amount = EXCLUDED.amount, currency = EXCLUDED.currency,
           expires_on = EXCLUDED.expires_on, status = EXCLUDED.status, removed_at = NULL,
           import_digest = EXCLUDED.import_digest, import_state = EXCLUDED.import_state,
           updated_at = CASE WHEN ({SUBSCRIPTION_DATA.format("sub.")})
                                  IS DISTINCT FROM ({SUBSCRIPTION_DATA.format("EXCLUDED.")})
                             THEN now() ELSE sub.updated_at END
     WHERE ({SUBSCRIPTION_DATA.format("sub.")}, sub.import_digest, sub.import_state)
           IS DISTINCT FROM (EXCLUDED.plan, EXCLUDED.amount, EXCLUDED.currency, EXCLUDED.expires_on,
                             EXCLUDED.status, true, EXCLUDED.import_digest, EXCLUDED.import_state)
"""

# Removal waits for the tenant's sweep (its advisory lock), so a sweep cannot claim a reminder for a
# subscription between this statement and the commit; pending reminders are skipped in id order,
# atomically against a send task's pending -> sending claim.
REMOVE = f"""
    WITH gone AS (
        UPDATE subscriptions SET removed_at = now(), updated_at = now()
         WHERE tenant_id = :tenant_id AND removed_at IS NULL AND id IN (SELECT id FROM {ABSENT})
        RETURNING id),
    skipped AS (
        UPDATE reminders SET status = 'skipped', skip_reason = 'removed', updated_at = now()
         WHERE id IN (SELECT id FROM reminders
                       WHERE tenant_id = :tenant_id AND status = 'pending'
                         AND subscription_id IN (SELECT id FROM gone)
                       ORDER BY id FOR UPDATE)
        RETURNING id)
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM skipped)
"""

# Run after the merge and the removal of the absent subscriptions: every row of the file is then an
# active subscription (merged, or kept), so the customers absent from the file are exactly those left
# with no active subscription (finding them through the kept digests cost 2.3 s per 1,000,000 rows).
REMOVE_CUSTOMERS = """
    UPDATE customers c SET removed_at = now(), updated_at = now()
     WHERE c.tenant_id = :tenant_id AND c.removed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM subscriptions sub
                        WHERE sub.tenant_id = :tenant_id AND sub.customer_id = c.id AND sub.removed_at IS NULL)
"""
