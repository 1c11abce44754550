"""The chat side of SingSong: people, chats, platforms, and the `singsong` command."""
