"""The command registry: every door's menu, help and schema come from COMMANDS."""

from typing import Any
from unittest.mock import create_autospec

from discord import app_commands
from pydantic import SecretStr

from bot.adapters.discord import DiscordAdapter
from bot.commands import COMMANDS, MENU, REQUESTED_KINDS, Commands, Place
from bot.commands._registry import BY_NAME, help_reply
from bot.config import Settings
from engine.arrange import STYLES
from storage.models import JobKind


def test_the_help_text_has_a_line_for_each_command_that_has_one() -> None:
    private, group = help_reply(Place("test", "1")), help_reply(Place("test", "2", False))
    for command in COMMANDS.values():
        if command.help:
            assert f"\n/{command.name}" in private.text
    assert "Or just type your lyrics here." in private.text
    assert "Or just type" not in group.text and "{" not in group.text
    assert ", ".join(STYLES) in group.text


def test_aliases_and_kinds_come_from_the_entries() -> None:
    assert BY_NAME["start"] is COMMANDS["help"]
    assert REQUESTED_KINDS == (JobKind.SING, JobKind.LYRICS, JobKind.MELODY, JobKind.PIANO)
    assert set(REQUESTED_KINDS) == set(JobKind) - {JobKind.GROUP}
    assert [command.name for command in MENU] == [
        name for name, command in COMMANDS.items() if command.in_menus]
    assert "name" in COMMANDS and "name" not in [command.name for command in MENU]


def discord_adapter() -> DiscordAdapter:
    settings = Settings(discord_token=SecretStr("a" * 24))
    return DiscordAdapter(create_autospec(Commands, instance=True), settings)


def test_discords_slash_commands_are_the_menu_with_its_arguments() -> None:
    tree = discord_adapter().tree
    slash = {command.name: command for command in tree.get_commands()}
    assert list(slash) == [command.name for command in MENU]
    for entry in MENU:
        made = slash[entry.name]
        assert isinstance(made, app_commands.Command)
        assert made.description == entry.summary
        options = {parameter.name: parameter for parameter in made.parameters}
        assert list(options) == [argument.name for argument in entry.arguments]
        for argument in entry.arguments:
            assert options[argument.name].required == argument.required
            assert [c.value for c in options[argument.name].choices] == list(argument.choices)


async def test_a_slash_commands_options_become_the_commands_words() -> None:
    adapter = discord_adapter()
    said: list[tuple[Any, ...]] = []

    async def on_slash(interaction: Any, command: str, text: str = "",
                       attachment: Any = None) -> None:
        said.append((command, text, attachment))

    adapter._on_slash = on_slash  # type: ignore[method-assign]
    # discord.py calls a command's callback with the interaction and the options given.
    callbacks: dict[str, Any] = {command.name: command.callback
                                 for command in adapter.tree.get_commands()
                                 if isinstance(command, app_commands.Command)}
    await callbacks["melody"](None, key="A minor", style="lofi")
    await callbacks["melody"](None, key=None, style="pop")
    await callbacks["share"](None, track=12)
    await callbacks["history"](None)
    assert said == [("melody", "A minor lofi", None), ("melody", "pop", None),
                    ("share", "12", None), ("history", "", None)]
