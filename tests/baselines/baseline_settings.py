"""Configurations of the imputation baselines used by the tests (imported by the test modules)."""

from __future__ import annotations

from countsbench.registry import REGISTRY

#: Settings small enough for the contract tests on the task's tiny sample dataset (seconds each).
TINY_CONFIGS = {
    "magic": {"knn_grid": "5,10"},
    "gain": {"iterations": 50},
    "hivae_poisson": {"epochs": 5},
    "hivae_gaussian": {"epochs": 5},
    "scidpm": {
        "epochs": 2,
        "channels": 8,
        "layers": 1,
        "heads": 2,
        "gene_dim": 4,
        "step_dim": 16,
        "dropout": 0.0,
        "diffusion_steps": 50,
        "sample_steps": 5,
    },
    "forest_diffusion": {"n_t": 10, "duplicate_K": 2, "n_estimators": 5, "feature_budget": None},
    "scgpt": {
        "steps": 30,
        "learning_rate": 1e-2,
        "embed_dim": 8,
        "layers": 1,
        "heads": 2,
        "ff_dim": 16,
        "n_bins": 5,
        "max_genes": 8,
    },
    "xtrimogene": {
        "steps": 30,
        "learning_rate": 1e-2,
        "embed_dim": 8,
        "encoder_layers": 1,
        "decoder_dim": 8,
        "decoder_layers": 1,
        "ff_mult": 1,
        "n_bins": 10,
    },
}

#: Settings that learn the correlated dataset of the tests (each method in well under a minute on
#: 2 idle cores).
LEARNING_CONFIGS = {
    "magic": {"knn_grid": "5,15"},
    "gain": {"iterations": 800, "batch_size": 64},
    "hivae_poisson": {"epochs": 100, "batch_size": 32},
    "hivae_gaussian": {"epochs": 100, "batch_size": 32},
    "scidpm": {
        "epochs": 1200,  # ~9,000 optimiser steps: a DDPM learns the gene-gene signal only then (30 epochs did not)
        "learning_rate": 2e-3,
        "channels": 16,
        "layers": 1,
        "heads": 2,
        "gene_dim": 8,
        "step_dim": 32,
        "dropout": 0.0,
        "diffusion_steps": 100,
        "sample_steps": 20,
        "train_target_ratio": 0.3,
    },
    "forest_diffusion": {"n_t": 10, "duplicate_K": 5, "n_estimators": 30, "feature_budget": None},
    "scgpt": {
        "steps": 1500,
        "batch_size": 32,
        "learning_rate": 2e-3,
        "warmup_steps": 50,
        "embed_dim": 32,
        "layers": 2,
        "heads": 2,
        "ff_dim": 64,
        "dropout": 0.0,
    },
    "xtrimogene": {
        "steps": 1500,
        "batch_size": 32,
        "learning_rate": 2e-3,
        "warmup_steps": 50,
        "embed_dim": 32,
        "encoder_layers": 2,
        "decoder_dim": 32,
        "decoder_layers": 1,
        "ff_mult": 2,
        "mask_ratio": 0.3,
        "zero_mask_ratio": 0.3,
    },
}

#: Methods that draw from a posterior: their point estimate is the mean of K imputations (the
#: runner's ``mean_of_K``); one draw adds the data's own noise and cannot be judged by RMSE alone.
MEAN_OF_K = {"scidpm": 5, "forest_diffusion": 5}

BASELINES = tuple(TINY_CONFIGS)


def build(name: str, config: dict):
    return REGISTRY.methods.get(name).cls(**config)
