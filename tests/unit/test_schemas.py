"""The checked-in JSON Schemas (schemas/) match the models that produce the wire messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventkit import schemas
from eventkit.discovery import NodeInfo
from eventkit.wire import BadRequest, RemoteError

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_checked_in_schemas_are_current() -> None:
    outdated = schemas.stale(SCHEMAS)
    assert not outdated, (
        f"{', '.join(outdated)} in schemas/ do not match the models: "
        "run `.venv/bin/python -m eventkit.schemas` and commit schemas/"
    )
    extra = {p.name for p in SCHEMAS.glob("*.json")} - set(schemas.MODELS)
    assert not extra, f"schemas/ has files no model produces: {sorted(extra)}"


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schemas.main(["--out", str(tmp_path)]) == 0
    assert schemas.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "rpc-error.json").write_text("{}\n")
    assert schemas.main(["--out", str(tmp_path), "--check"]) == 1
    assert "rpc-error.json is not current" in capsys.readouterr().out


def test_schema_ids_name_the_files() -> None:
    for name, model in schemas.MODELS.items():
        schema = json.loads((SCHEMAS / name).read_text())
        assert schema["$id"] == f"urn:eventkit:schema:{name.removesuffix('.json')}"
        assert schema["title"] == model.model_config.get("title")
    required = json.loads((SCHEMAS / "registry-node.json").read_text())["required"]
    assert set(required) == {n for n, f in NodeInfo.model_fields.items() if f.is_required()}


@pytest.mark.parametrize(
    "error",
    [
        BadRequest("name is required", id="greeter", data=[{"loc": ["name"]}]),
        RemoteError("teapot", id="x", code=418),
    ],
)
def test_remote_error_model_mirrors_to_wire(error: RemoteError) -> None:
    wire = error.to_wire()
    model = schemas.RemoteErrorModel.model_validate(wire)
    assert model.model_dump(exclude_none=True) == wire
    assert set(schemas.RemoteErrorModel.model_fields) >= set(wire)
