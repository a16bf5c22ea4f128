"""Sphinx configuration for the emo documentation."""

from __future__ import annotations

import emo

project = "emo"
author = "The emo developers"
copyright = "2026, the emo developers"
release = emo.__version__
version = emo.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx_autodoc_typehints",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"emo {release}"

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
typehints_fully_qualified = False
always_document_param_types = False
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# Offline builds: the inventories are optional; links simply stay plain text without them.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
intersphinx_disabled_reftypes = ["*"]

# Third-party types in signatures have no inventory offline; they must not fail -W builds.
nitpicky = False
suppress_warnings = ["myst.header", "autodoc.import_object"]
