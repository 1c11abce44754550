"""A song's public link in storage, on SQLite and PostgreSQL: one per song, only its maker's,
gone when revoked and when its maker is forgotten."""

from storage.queries import (
    forget,
    make_share_link,
    revoke_share_link,
    share_links_of,
    shared_by_link,
    user_for,
)
from tests.database import Database
from tests.storage.test_storage import make_track

TOKEN, OTHER_TOKEN = "a" * 43, "b" * 43


async def test_one_link_per_song_made_and_revoked_by_its_maker(database: Database) -> None:
    async with database.sessions() as session:
        ann = await user_for(session, "web", "ann", "Ann")
        bob = await user_for(session, "web", "bob")
    track = await make_track(database, ann, "m1", b"ann's song")
    async with database.sessions() as session:
        assert await make_share_link(session, bob, track.id, TOKEN, "Bob") is None
        link = await make_share_link(session, ann, track.id, TOKEN, "Ann")
        assert link is not None and (link.token, link.credit) == (TOKEN, "Ann")
        # Asked again: the same token, the credit chosen now.
        again = await make_share_link(session, ann, track.id, OTHER_TOKEN, "")
        assert again is not None and (again.token, again.credit) == (TOKEN, "")
        found = await shared_by_link(session, TOKEN)
        assert found is not None and found[1].id == track.id and found[2].id == track.job_id
        assert await shared_by_link(session, OTHER_TOKEN) is None
        assert set(await share_links_of(session, [track.id])) == {track.id}
        assert not await revoke_share_link(session, bob, track.id)
        assert await revoke_share_link(session, ann, track.id)
        assert await shared_by_link(session, TOKEN) is None
        assert not await revoke_share_link(session, ann, track.id)


async def test_forgetting_the_maker_deletes_the_link(database: Database) -> None:
    async with database.sessions() as session:
        ann = await user_for(session, "web", "ann")
    track = await make_track(database, ann, "m1", b"ann's song")
    async with database.sessions() as session:
        assert await make_share_link(session, ann, track.id, TOKEN, "") is not None
        await forget(session, database.blobs, ann)
        assert await shared_by_link(session, TOKEN) is None
