"""One module per chat platform, each translating between the platform and bot.commands."""
