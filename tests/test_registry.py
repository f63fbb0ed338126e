import pytest

from mcbench.api import METHODS
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


def test_first_lookups_from_two_threads_both_wait_for_the_whole_load():
    """A lazily loaded registry: a second thread's first lookup waits for the load the first thread started
    (it used to see a half-filled registry and answer 'Unknown method')."""
    import threading
    import time

    from mcbench.registry import Registry

    reg: Registry[int] = Registry("thing")

    def load() -> None:
        time.sleep(0.2)  # the load takes a while (module imports)
        reg.register("late")(1)

    reg._loader = load
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
