"""a track keeps what its picture shows (picture_card_blob: a small JSON the picture is drawn
from when first asked for) instead of a picture drawn with every song

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("picture_card_blob", sa.String(64), nullable=True))


def downgrade() -> None:
    # A song whose picture was never asked for keeps none: it is drawn by the code of this
    # revision only. Its card file stays in the blob store until collected.
    with op.batch_alter_table("tracks") as batch:
        batch.drop_column("picture_card_blob")
