"""group songs: gatherings and the voices that joined them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gatherings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("starter_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=43), nullable=False),
        sa.Column("reply_to", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"],
                                name=op.f("fk_gatherings_chat_id_chats"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["starter_id"], ["users.id"],
                                name=op.f("fk_gatherings_starter_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_gatherings_job_id_jobs"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatherings")),
        sa.UniqueConstraint("token", name=op.f("uq_gatherings_token")),
    )
    with op.batch_alter_table("gatherings") as batch:
        batch.create_index(batch.f("ix_gatherings_chat_id"), ["chat_id"], unique=False)
        batch.create_index(batch.f("ix_gatherings_status"), ["status"], unique=False)
    op.create_table(
        "group_voices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gathering_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("input_blob", sa.String(length=64), nullable=False),
        sa.Column("reply_to", sa.JSON(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("album_yes", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["gathering_id"], ["gatherings.id"],
                                name=op.f("fk_group_voices_gathering_id_gatherings"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_group_voices_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_voices")),
        sa.UniqueConstraint("gathering_id", "user_id",
                            name=op.f("uq_group_voices_gathering_id")),
    )
    with op.batch_alter_table("group_voices") as batch:
        batch.create_index(batch.f("ix_group_voices_gathering_id"), ["gathering_id"],
                           unique=False)
        batch.create_index(batch.f("ix_group_voices_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("group_voices")
    op.drop_table("gatherings")
