"""Languages: a customer's own locale, the tenant's date style and its GSM-7 option.

* ``customers.locale``: the customer's CLDR locale (``fr_BE``); NULL means the tenant's locale, so
  every existing customer keeps reading the tenant's language.
* ``tenants.date_style``: how ``{expires_on}`` is written, CLDR's ``short``, ``medium`` or ``long``
  date format of the customer's locale (``long``: "5 maart 2027").
* ``tenants.normalize_text``: whether the tenant's own text (templates, its name) is normalised to
  GSM-7 like the formatted values are (curly apostrophes pasted from a word processor).

A nullable column and two columns with constant defaults: no table rewrite on PostgreSQL 11+.

``{amount}`` now carries its currency as the locale writes it ("€ 49,00"), so stored templates that
wrote ``{amount} {currency}`` (or ``{currency} {amount}``) are rewritten to ``{amount}``, as saving a
template does from now on (``domain.templates.upgrade_amount_placeholders``); the downgrade cannot tell
them from templates written as ``{amount}`` and leaves them.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and the date style's check."""
    op.add_column("customers", sa.Column("locale", sa.String(35), nullable=True))
    op.add_column("tenants", sa.Column("date_style", sa.String(6), nullable=False, server_default="long"))
    op.add_column("tenants", sa.Column("normalize_text", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_check_constraint("tenants_date_style_valid", "tenants", "date_style IN ('short', 'medium', 'long')")
    op.execute(
        "UPDATE sms_templates SET body = replace(replace(body, '{amount} {currency}', '{amount}'),"
        " '{currency} {amount}', '{amount}')"
        " WHERE strpos(body, '{amount} {currency}') > 0 OR strpos(body, '{currency} {amount}') > 0"
    )


def downgrade() -> None:
    """Drop them (customers read the tenant's language again)."""
    op.drop_constraint("tenants_date_style_valid", "tenants", type_="check")
    op.drop_column("tenants", "normalize_text")
    op.drop_column("tenants", "date_style")
    op.drop_column("customers", "locale")
