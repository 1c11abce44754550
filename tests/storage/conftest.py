from tests.database import database, empty_database  # noqa: F401
