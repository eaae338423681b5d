from __future__ import annotations

import pytest

from db.testing import SqliteTemplate
from tests.plugin import template


@pytest.fixture(scope="session")
def sqlite_template(request: pytest.FixtureRequest) -> SqliteTemplate:
    found = template(request.config, "sqlite")
    assert isinstance(found, SqliteTemplate)
    return found
