"""Every example in fastseg's docstrings runs and prints what it says (doctest)."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fastseg

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(fastseg.__path__, prefix="fastseg.")
    if not name.startswith("fastseg._ext")
)
OPTIONAL = {"fastseg.viz": "matplotlib", "fastseg.dask": "dask"}


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name}"


def test_every_public_function_has_an_example():
    missing = []
    for name in fastseg.__all__:
        obj = getattr(fastseg, name)
        if callable(obj) and ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert not missing, f"public callables without a runnable example: {missing}"
