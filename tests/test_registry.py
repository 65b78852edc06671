import pytest

from countsbench import Method, register_method
from countsbench.registry import REGISTRY, RegistryError, load_plugin, register_metric


def test_builtins_are_registered_with_metadata():
    spec = REGISTRY.methods.get("conditional_mean")
    assert spec.role == "control" and spec.kinds == ("imputation", "denoising")
    assert REGISTRY.controls_for("pbmc_mcar") == ["conditional_mean", "mean", "zero"]
    assert REGISTRY.controls_for("pbmc_denoise") == ["conditional_mean", "mean", "no_denoising", "perfect_denoising"]
    assert REGISTRY.tasks.get("pbmc_mcar").kind == "imputation"
    assert REGISTRY.metrics.get("bias").direction == "target" and REGISTRY.metrics.get("bias").target == 0.0
    assert REGISTRY.metrics.get("spearman_per_cell").direction == "maximize"


@pytest.mark.parametrize("table,name", [("methods", "nope"), ("tasks", "nope_task"), ("metrics", "nope_metric")])
def test_unknown_names_list_the_known_ones(table, name):
    with pytest.raises(RegistryError) as error:
        getattr(REGISTRY, table).get(name)
    message = str(error.value)
    assert name in message and "known" in message
    assert getattr(REGISTRY, table).names()[0] in message


def test_unsupported_task_kind_fails_before_work(test_plugin):
    load_plugin(test_plugin)
    with pytest.raises(RegistryError, match="does not support generation tasks"):
        REGISTRY.check_supports("conditional_mean", "plugin_generation")


def test_plugin_module_registers_its_methods(test_plugin):
    load_plugin(test_plugin)
    assert REGISTRY.methods.get("plugin_median").cls.__name__ == "PluginMedian"
    load_plugin(test_plugin)  # importing twice is harmless


def test_missing_plugin_module_is_a_clear_error():
    with pytest.raises(RegistryError, match="cannot be imported"):
        load_plugin("no_such_module_for_countsbench")


def test_duplicate_name_from_another_definition_is_rejected():
    with pytest.raises(RegistryError, match="already registered"):

        @register_method("zero", kinds=("imputation",))
        class AnotherZero(Method):
            pass


def test_decorator_checks_its_arguments():
    with pytest.raises(RegistryError, match="role"):
        register_method("x", kinds=("imputation",), role="champion")
    with pytest.raises(RegistryError, match="task kind"):
        register_method("x", kinds=("classification",))
    with pytest.raises(RegistryError, match="target"):
        register_metric("x", kinds=("imputation",), direction="target")
    with pytest.raises(RegistryError, match="subclass"):
        register_method("x", kinds=("imputation",))(object)
    with pytest.raises(RegistryError, match="max_resamples"):
        register_metric("x", kinds=("imputation",), direction="minimize", max_resamples=1)
    with pytest.raises(RegistryError, match="same_signal_when"):
        register_metric("x", kinds=("imputation",), direction="minimize", same_signal_as="y", same_signal_when="often")
    with pytest.raises(RegistryError, match="itself"):
        register_metric("x", kinds=("imputation",), direction="minimize", same_signal_as="x")


def test_entry_point_plugins_are_loaded(test_plugin, monkeypatch):
    import importlib.metadata

    from countsbench.registry import ENTRY_POINT_GROUP, Registry

    point = importlib.metadata.EntryPoint(name="test", value=test_plugin, group=ENTRY_POINT_GROUP)
    asked = []

    def entry_points(group):
        asked.append(group)
        return [point]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry = Registry()
    registry.load_entry_points()
    assert asked == [ENTRY_POINT_GROUP]
    assert "plugin_median" in REGISTRY.methods  # decorators write to the one global registry
