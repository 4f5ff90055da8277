"""The ledger's partial indexes as migrated are the ones the code's statements are written against.

``adapters/orm.py`` defines each predicate once; migrations 0004 and 0005 (history, never edited)
created the indexes. PostgreSQL normalises a predicate's text, so both are compared as PostgreSQL
prints them: the migrated index's, and that of the same index built from the constant on a copy of
the table.
"""

from __future__ import annotations

from sqlalchemy import text

from tenant_worker.adapters.orm import LEDGER_INDEX_PREDICATES


def test_every_migrated_ledger_index_has_the_predicate_the_code_names(sessions):
    with sessions() as session:
        rows = session.execute(
            text("""
                SELECT c.relname, pg_get_expr(i.indpred, i.indrelid)
                  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE i.indrelid = 'reminders'::regclass AND i.indpred IS NOT NULL
            """)
        )
        migrated = {name: predicate for name, predicate in rows}
        session.execute(text("CREATE TEMP TABLE predicates_probe (LIKE reminders)"))
        expected = {}
        for name, predicate in LEDGER_INDEX_PREDICATES.items():
            session.execute(text(f"CREATE INDEX {name}_probe ON predicates_probe (id) WHERE {predicate}"))
            expected[name] = session.execute(
                text("""
                    SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
                      JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :probe
                """),
                {"probe": f"{name}_probe"},
            ).scalar_one()
        session.rollback()
    assert migrated == expected
