"""`shopbot tau2 import|export` against the configured database: a round trip gives the
data back, and an import never mixes into a shop that holds data unless told to replace it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db.tau2 import round_money
from shopbot.cli import app
from shopbot.tau2.data import Data, tau2_dir

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHOPBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    return tmp_path


def test_import_then_export_round_trips(database: Path, tau2_db: Data) -> None:
    imported = runner.invoke(app, ["tau2", "import", str(tau2_dir() / "db.json")])
    assert imported.exit_code == 0, imported.output
    assert "50 products, 500 users, 1000 orders" in imported.output
    out = database / "out.json"
    assert runner.invoke(app, ["tau2", "export", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == round_money(tau2_db)
    printed = runner.invoke(app, ["tau2", "export"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == round_money(tau2_db)


def test_import_refuses_a_shop_with_data_unless_replacing(database: Path, tau2_db: Data) -> None:
    small = {"products": {}, "users": {}, "orders": {}}
    user = next(iter(tau2_db["users"].values()))
    small["users"][user["user_id"]] = {**user, "orders": []}
    path = database / "small.json"
    path.write_text(json.dumps(small))
    assert runner.invoke(app, ["tau2", "import", str(path)]).exit_code == 0
    again = runner.invoke(app, ["tau2", "import", str(path)])
    assert again.exit_code == 2
    assert "--replace" in again.output
    assert runner.invoke(app, ["tau2", "import", "--replace", str(path)]).exit_code == 0
    exported = json.loads(runner.invoke(app, ["tau2", "export"]).stdout)
    assert exported == round_money(small)


def test_import_refuses_what_is_not_tau2_data(database: Path) -> None:
    path = database / "bad.json"
    path.write_text(json.dumps({"products": {}, "users": {}}))
    result = runner.invoke(app, ["tau2", "import", str(path)])
    assert result.exit_code == 2
    assert "not τ²-bench retail data" in result.output
