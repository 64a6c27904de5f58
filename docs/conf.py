"""Sphinx configuration of fastseg's documentation: the API reference, built from the numpydoc
docstrings of the installed package, and the quality and performance pages, rendered from the JSON
results in ``results/`` by ``render_results.py``.

Build (from the repository root, with ``pip install ".[docs,viz,nifti,dask]"``)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The package is imported as installed: this file does not put the source tree on ``sys.path``, whose
kernels are not compiled in a fresh clone.
"""
import fastseg

project = "fastseg"
author = "fastseg developers"
copyright = "2026, fastseg developers"
release = fastseg.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",   # numpydoc-style docstrings
    "myst_parser",           # the Markdown pages (results, changelog)
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "results", "templates"]

# numpydoc-style sections; every public module's docstrings are written that way
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True


myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"fastseg {release}"
html_static_path = []


def _skip_metadata_routing(app, what, name, obj, skip, options):
    """Skip scikit-learn's generated ``set_{fit,predict,...}_request`` methods: scikit-learn documents
    them, and their docstrings link to scikit-learn's own glossary, which is not part of this build."""
    if what == "class" and name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_routing)
