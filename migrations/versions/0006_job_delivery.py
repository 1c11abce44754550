"""how a job is answered in columns of its own (reply_to, private), out of its parameters,
which now hold only what the engine is asked

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 00:00:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOBS = sa.table("jobs", sa.column("id", sa.Integer()), sa.column("parameters", sa.JSON()),
                sa.column("reply_to", sa.JSON()), sa.column("private", sa.Boolean()))


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("reply_to", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("private", sa.Boolean(), nullable=True))
    connection = op.get_bind()
    for job_id, parameters in connection.execute(
            sa.select(JOBS.c.id, JOBS.c.parameters)).all():
        parameters = _loaded(parameters)
        # A group song's voices carried their own messages' reply_to, which nothing read.
        for voice in parameters.get("voices", []):
            voice.pop("reply_to", None)
        reply_to, private = parameters.pop("reply_to", None), parameters.pop("private", None)
        connection.execute(JOBS.update().where(JOBS.c.id == job_id).values(
            parameters=parameters, reply_to=reply_to, private=private))


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(JOBS.c.id, JOBS.c.parameters, JOBS.c.reply_to,
                                        JOBS.c.private)).all()
    for job_id, parameters, reply_to, private in rows:
        parameters = _loaded(parameters)
        if reply_to is not None:
            parameters["reply_to"] = reply_to
        if private is not None:
            parameters["private"] = private
        connection.execute(JOBS.update().where(JOBS.c.id == job_id).values(
            parameters=parameters))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("private")
        batch.drop_column("reply_to")


def _loaded(parameters: Any) -> dict[str, Any]:
    """The row's parameters as a dict (a JSON column can read back as text)."""
    if isinstance(parameters, str):
        parameters = json.loads(parameters)
    return dict(parameters or {})
