from tests.bot.service import service  # noqa: F401
from tests.database import database, empty_database  # noqa: F401
