"""Sphinx configuration of the API reference, generated from the docstrings (``tests/test_api_docs.py`` builds
it, so that it cannot rot). Build it with ``.venv/bin/sphinx-build -b html docs/api build/api``; no hosting
is needed: open ``build/api/index.html``."""

project = "bert-ode"
author = "The bert-ode authors"
extensions = [
    "sphinx.ext.autodoc",  # the reference comes from the docstrings
    "sphinx.ext.napoleon",  # their "Args:" sections
]
autodoc_member_order = "bysource"
# "Attributes:" sections as fields of their class, not second descriptions of the attributes autodoc lists
napoleon_use_ivar = True
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
# transformers documents its own classes: inherited docstrings stay out of this reference.
autodoc_inherit_docstrings = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
