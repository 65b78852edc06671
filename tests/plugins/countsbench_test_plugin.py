"""A user's plugin module as the tests use it: methods and tasks registered with the decorators."""

from __future__ import annotations

import numpy as np

from countsbench import CountData, Method, Task, TaskData, register_method, register_task


@register_method("plugin_median", kinds=("imputation",), role="baseline", summary="Per-gene training median.")
class PluginMedian(Method):
    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        self.medians = None

    def fit(self, train, valid, ctx):
        self.medians = np.median(train.dense(), axis=0) + self.offset

    def impute(self, data, target_mask, ctx, n_samples=1):
        return np.where(target_mask, np.round(self.medians).astype(np.int64), data.dense())


@register_method("plugin_crashes", kinds=("imputation",), summary="Fails while fitting.")
class PluginCrashes(Method):
    def fit(self, train, valid, ctx):
        raise RuntimeError("deliberate failure in fit")


@register_method("plugin_fractional", kinds=("imputation",), summary="Returns non-integer imputations.")
class PluginFractional(Method):
    def impute(self, data, target_mask, ctx, n_samples=1):
        return np.where(target_mask, 0.5, data.dense())


@register_method("plugin_overwrites", kinds=("imputation",), summary="Changes observed entries.")
class PluginOverwrites(Method):
    def impute(self, data, target_mask, ctx, n_samples=1):
        return data.dense() + 1


class NegativeCountsTask(Task):
    kind = "imputation"
    default_metrics = ("rmse",)

    def load(self, data_dir):
        counts = np.array([[1, -2], [3, 4]])
        split = CountData(counts=counts)
        return TaskData(train=split, valid=split, test=split)


register_task("plugin_negative_counts", kind="imputation", summary="Has negative counts.")(NegativeCountsTask)


class TinyGenerationTask(Task):
    kind = "generation"
    default_metrics = ("mmd",)

    def load(self, data_dir):
        rng = np.random.default_rng(0)
        split = CountData(counts=rng.poisson(3.0, size=(40, 3)))
        return TaskData(train=split, valid=split, test=split)


register_task("plugin_generation", kind="generation", summary="Tiny Poisson generation task.")(TinyGenerationTask)
