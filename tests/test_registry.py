import pytest

from mcbench.contracts import METHODS
from mcbench.data.base import DATASETS
from mcbench.encoders import ENCODERS
from mcbench.registry import Registry, UnknownNameError


def test_duplicate_name_is_an_error():
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(2)


def test_unknown_name_suggests_close_matches_and_lists_all():
    with pytest.raises(UnknownNameError) as err:
        METHODS.get("multi-map")
    message = str(err.value)
    assert "Did you mean: multi_map" in message
    assert "kmeans_image" in message and "zeroshot_gpt" in message


@pytest.mark.parametrize("registry,names", [
    (METHODS, {"kmeans_image", "zeroshot_gpt", "zeroshot_label", "crl_projection", "multi_map"}),
    (DATASETS, {"synth_shapes", "synth_cards", "synth_fruit"}),
    (ENCODERS, {"tiny_clip", "vit_b32_openai"}),
])
def test_registries_hold_the_builtin_entries(registry, names):
    assert names <= set(registry.names())


def test_glob_listing():
    assert set(METHODS.names("zeroshot_*")) == {"zeroshot_gpt", "zeroshot_label"}


def test_method_config_typo_names_the_key_and_valid_settings():
    cls = METHODS.get("multi_map")
    with pytest.raises(ValueError, match=r"method\.alpah.*Valid settings: .*alpha"):
        cls.from_params({"alpah": 0.3})


def test_method_config_wrong_type_is_rejected():
    with pytest.raises(ValueError, match=r"method\.epochs='ten'.*expected int"):
        METHODS.get("multi_map").from_params({"epochs": "ten"})


def test_unknown_method_names_the_plugin_entry_point_group():
    with pytest.raises(UnknownNameError, match=r"registers through the 'mcbench\.methods' entry-point group"):
        METHODS.get("my_own_method")
    plain: Registry[int] = Registry("thing")
    assert "entry-point" not in plain.unknown_message("x")


def test_first_lookups_from_two_threads_both_wait_for_the_whole_load(tmp_path, monkeypatch):
    """A lazily loaded registry: a second thread's first lookup waits for the import the first thread started
    (it used to see a half-filled registry and answer 'Unknown method')."""
    import sys
    import threading

    from mcbench.registry import Registry

    reg: Registry[int] = Registry("thing", modules=("slow_registrant",))
    (tmp_path / "slow_registrant.py").write_text(
        "import time\nimport test_registry_target as t\ntime.sleep(0.2)  # a slow module import\n"
        "t.REG.register('late')(1)\n")
    target = type(sys)("test_registry_target")
    target.REG = reg
    monkeypatch.setitem(sys.modules, "test_registry_target", target)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_registrant", raising=False)
    results, errors = [], []

    def lookup() -> None:
        try:
            results.append(reg.get("late"))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=lookup) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [1, 1, 1]


def test_lazy_module_attr_entries_import_only_when_looked_up(tmp_path, monkeypatch):
    """The one registration pattern's lazy form (entry points, ``add_lazy``): listed before import, imported on
    the first lookup of that name."""
    import sys

    (tmp_path / "lazy_thing_mod.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_thing_mod", raising=False)
    reg: Registry[int] = Registry("thing")
    reg.add_lazy("answer", "lazy_thing_mod:VALUE")
    assert "answer" in reg.names() and "lazy_thing_mod" not in sys.modules
    assert reg.get("answer") == 42 and "lazy_thing_mod" in sys.modules
    with pytest.raises(ValueError, match="registered twice"):
        reg.add_lazy("answer", "lazy_thing_mod:OTHER")
