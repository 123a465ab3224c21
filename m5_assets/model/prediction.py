"""The booster's output on feature rows: through its trees compiled to machine code on large inputs.

Prediction is most of a forecast partition's time: LightGBM walks 150-odd trees of 63 leaves for
each of 853,720 rows at full scale, about 10 s on 2 cores. lleaves compiles a model's trees with
LLVM into a function that gives the same output (both sum the trees in double precision: equal
to 1e-9 here) in a fraction of that. Compiling a model takes seconds, so it is done once per model
and machine: the object code is cached in the data folder (``tmp/compiled-models``, or
``$M5_COMPILED_MODELS_DIR``) under a digest of the model's text, the lleaves and llvmlite versions and
the host CPU. Small inputs (a test's, real_280's 7,840 rows a day) are
predicted by LightGBM, which is faster than a compile.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

import lightgbm as lgb
import numpy as np

from m5_assets.settings import load_settings

# Rows x trees above which compiling pays for itself even without a cached compile (LightGBM
# walks about 15 million row-trees a second on 2 cores; a compile takes a few seconds).
COMPILE_ABOVE = 50_000_000
progress_log = logging.getLogger("m5_assets.progress")
_loaded: dict[str, object] = {}  # digest -> compiled lleaves model, for this process


def predict(booster: lgb.Booster, matrix: np.ndarray, compiled: bool | None = None) -> np.ndarray:
    """``booster.predict(matrix)``: compiled when ``compiled``, or by default when the input is
    large enough (``COMPILE_ABOVE``)."""
    if compiled is None:
        compiled = len(matrix) * booster.num_trees() >= COMPILE_ABOVE
    if not compiled:
        out = booster.predict(matrix)
        assert isinstance(out, np.ndarray)  # sparse only for feature contributions
        return out
    return np.asarray(compiled_model(booster).predict(matrix, n_jobs=os.cpu_count()))  # type: ignore[attr-defined]


def cache_folder() -> Path:
    settings = load_settings()
    return settings.compiled_models_dir or settings.paths.compiled_models


def compiled_model(booster: lgb.Booster) -> object:
    """The lleaves model of ``booster``, compiled once per machine (then loaded from the cache)."""
    import lleaves
    from llvmlite import binding

    text = booster.model_to_string()
    stamp = f"{version('lleaves')}|{version('llvmlite')}|{binding.get_host_cpu_name()}|{binding.get_host_cpu_features().flatten()}"
    digest = hashlib.sha256((stamp + "\n" + text).encode()).hexdigest()[:32]
    if digest in _loaded:
        return _loaded[digest]
    folder = cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    cached = folder / f"{digest}.o"
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        model_file = Path(scratch) / "model.txt"
        model_file.write_text(text)
        model = lleaves.Model(model_file=str(model_file))
        if cached.exists():
            model.compile(cache=str(cached))
        else:
            progress_log.info(f"compiling the model's {booster.num_trees()} trees (once per model and machine)")
            # lleaves writes its cache file in place: written beside and renamed, a process that
            # compiles the same model at the same time never reads half of it.
            beside = Path(scratch) / "compiled.o"
            model.compile(cache=str(beside))
            os.replace(beside, cached)
    _loaded[digest] = model
    return model
