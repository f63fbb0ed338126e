"""One schema per method: its ``Config`` dataclass. conf/method/<name>.yaml extends it (Hydra's ConfigStore,
``method_schema/<name>``) and holds only what differs; the schema is read from source so composing imports no torch."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from mcbench.contracts import METHODS
from mcbench.validation import SCHEMA_GROUP, configs_in_source, read_method_configs, schema_node

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (REPO / "conf" / "method").glob("*.yaml"))


def _fields(config_class: type) -> list[tuple[str, object, object]]:
    hints = typing.get_type_hints(config_class)
    return [(f.name, hints[f.name], f.default) for f in dataclasses.fields(config_class)]


def test_every_method_has_a_yaml_and_the_source_reading_matches_the_dataclass():
    read = read_method_configs()
    assert sorted(read) == SHIPPED == sorted(n for n in METHODS.names() if METHODS.get(n).__module__.startswith("mcbench.methods."))
    from_source = {}  # every module is read from source: none falls back to importing it (torch)
    for path in sorted((REPO / "methods").glob("*.py")):
        from_source.update(configs_in_source(path.read_text(encoding="utf-8")))
    assert sorted(from_source) == SHIPPED
    for name in SHIPPED:
        assert _fields(read[name]) == _fields(METHODS.get(name).Config), name
        assert [type(d) for _, _, d in _fields(read[name])] == [type(d) for _, _, d in _fields(METHODS.get(name).Config)]


@pytest.mark.parametrize("name", SHIPPED)
def test_yaml_holds_only_what_differs_from_the_dataclass(name):
    conf = yaml.safe_load((REPO / "conf" / "method" / f"{name}.yaml").read_text())
    assert conf.pop("name") == name
    assert conf.pop("defaults", None) == [f"/{SCHEMA_GROUP}/{name}@_here_", "_self_"], (
        f"conf/method/{name}.yaml must extend its schema: start it with "
        f"'defaults: [/{SCHEMA_GROUP}/{name}@_here_, _self_]' (docs/architecture.md, Configs)")
    defaults = {f.name: f.default for f in dataclasses.fields(METHODS.get(name).Config)}
    unknown = sorted(set(conf) - set(defaults))
    assert not unknown, f"conf/method/{name}.yaml: {unknown} are no settings of {METHODS.get(name).Config.__name__}"
    repeated = sorted(k for k, v in conf.items() if type(v) is type(defaults[k]) and v == defaults[k])
    assert not repeated, f"conf/method/{name}.yaml repeats the dataclass default of {repeated}: remove them"


@pytest.mark.parametrize("name", SHIPPED)
def test_composed_method_is_the_dataclass_under_the_yaml(name):
    from hydra import compose, initialize_config_module

    with initialize_config_module("mcbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"method={name}", "dataset=cmuface"])  # no method_dataset file
    own = yaml.safe_load((REPO / "conf" / "method" / f"{name}.yaml").read_text())
    own.pop("defaults")
    expected = {"name": name, **dataclasses.asdict(METHODS.get(name).Config()), **own}
    assert OmegaConf.to_container(cfg.method) == expected
    assert METHODS.get(name).from_params({k: v for k, v in expected.items() if k != "name"}).hparams() == {
        k: v for k, v in expected.items() if k != "name"}


def test_the_schema_checks_keys_and_types_at_composition_and_keeps_an_int_written_for_a_float():
    node = schema_node("multi_map", METHODS.get("multi_map").Config)
    merged = OmegaConf.merge(node, {"lr": 1})
    assert merged.lr == 1 and type(merged.lr) is int  # as check_params: the run's settings are what was written
    with pytest.raises(Exception, match="alpah"):
        OmegaConf.merge(node, {"alpah": 0.3})
    with pytest.raises(Exception, match="epochs"):
        OmegaConf.merge(node, {"epochs": "ten"})


def test_a_plugin_config_with_types_omegaconf_cannot_check_still_composes():
    @dataclasses.dataclass
    class Odd:
        sizes: tuple = (1, 2)
        maybe: typing.Optional[str] = None
        rate: float = 0.5

    node = schema_node("odd", Odd)
    assert OmegaConf.to_container(node) == {"name": "odd", "sizes": [1, 2], "maybe": None, "rate": 0.5}


def test_composing_and_the_cfg_flag_import_no_torch(tmp_path):
    from cli_inprocess import cli_process_loads

    proc, loaded = cli_process_loads(tmp_path, ["method=multi_map", "method.lr=0.1", "--cfg", "job"],
                                     ("torch", "mcbench.methods.multi_map"))
    assert proc.returncode == 0, proc.stderr
    assert "lr: 0.1" in proc.stdout and loaded == {"torch": False, "mcbench.methods.multi_map": False}


def test_schemas_are_built_on_their_first_load_and_once_for_every_copy_hydra_makes():
    """Hydra deep-copies the ConfigStore for each config lookup (about 90 for `mcbench --help`): the schemas stay
    unbuilt until a composition loads one, and a copy shares what was built."""
    import copy

    from mcbench.validation import _LazyGroup

    calls = []
    group = _LazyGroup({"a.yaml": lambda: calls.append("a") or "node a", "b.yaml": lambda: calls.append("b") or "node b"})
    twin = copy.deepcopy({"method_schema": group})["method_schema"]
    assert sorted(twin) == ["a.yaml", "b.yaml"] and "a.yaml" in twin and calls == []
    assert twin["a.yaml"] == "node a" and group["a.yaml"] == "node a" and calls == ["a"]
    with pytest.raises(KeyError):
        group["c.yaml"]
