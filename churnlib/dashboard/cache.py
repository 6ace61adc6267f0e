"""The Streamlit caches every dashboard page uses: products and models are read once, not per page load.

:func:`cached_products` keys the loaded products on :func:`churnlib.dashboard.products.products_signature`
(path, modification time and size of each product file), so a new ``make report`` is read again on the
next page load while an unchanged one costs a few ``stat`` calls. :func:`cached_model` keeps one
:class:`churnlib.model.ChurnModel` per artifact (a resource: never copied, never pickled).
:func:`page_products` is what a page calls first: the products, or a plain message and a stop when
something the page needs is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from churnlib.dashboard import views
from churnlib.dashboard.products import Products, dashboard_root, load_products, products_signature
from churnlib.model import ARTIFACT_NAME, ChurnModel
from churnlib.whatif import MANIFEST_NAME, WHATIF_NAME, WhatIfModel

__all__ = ["cached_activity_log", "cached_model", "cached_overview", "cached_products", "cached_risk_table",
           "cached_user_ids", "cached_whatif", "page_products"]


@st.cache_data(show_spinner="Reading the report's products ...", max_entries=4)
def _products(root: str, signature: tuple) -> Products:  # noqa: ARG001 - the signature is the cache key
    return load_products(root)


def cached_products(root: str | os.PathLike | None = None) -> Products:
    """:func:`churnlib.dashboard.products.load_products`, cached on the products' signature.

    Parameters
    ----------
    root : path-like, optional
        Output root (default: :func:`churnlib.dashboard.products.dashboard_root`).

    Returns
    -------
    Products
    """
    root = str(dashboard_root() if root is None else root)
    return _products(root, products_signature(root))


@st.cache_data(show_spinner=False, max_entries=4)
def _overview(root: str, signature: tuple) -> views.Overview:
    return views.overview(_products(root, signature))


def cached_overview(root: str | os.PathLike | None = None) -> views.Overview:
    """:func:`churnlib.dashboard.views.overview` of the products, computed once per products version."""
    root = str(dashboard_root() if root is None else root)
    return _overview(root, products_signature(root))


@st.cache_data(show_spinner=False, max_entries=4)
def _risk_table(root: str, signature: tuple) -> pd.DataFrame:
    return views.risk_table(_products(root, signature))


def cached_risk_table(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """:func:`churnlib.dashboard.views.risk_table` of the products, computed once per products version."""
    root = str(dashboard_root() if root is None else root)
    return _risk_table(root, products_signature(root))


@st.cache_data(show_spinner=False, max_entries=4)
def _user_ids(root: str, signature: tuple) -> list[str]:
    return views.user_ids(_products(root, signature))


def cached_user_ids(root: str | os.PathLike | None = None) -> list[str]:
    """:func:`churnlib.dashboard.views.user_ids` of the products, computed once per products version."""
    root = str(dashboard_root() if root is None else root)
    return _user_ids(root, products_signature(root))


@st.cache_data(show_spinner=False, max_entries=64)
def _activity(path: str | None, stamp: tuple, user: str, kinds: tuple[str, ...], limit: int) -> views.ActivityLog:
    return views.activity_log(path, user, kinds=list(kinds), limit=limit)


def cached_activity_log(events_path: str | os.PathLike | None, user: str, kinds: tuple[str, ...] = (),
                        limit: int = 500) -> views.ActivityLog:
    """:func:`churnlib.dashboard.views.activity_log`, cached per log version, user, kinds and limit."""
    path = None if events_path is None else str(events_path)
    stamp = _stat(Path(path)) if path else (None, None)
    return _activity(path, stamp, str(user), tuple(kinds), int(limit))


def _stat(path: Path) -> tuple:
    try:
        st_ = path.stat()
        return (st_.st_mtime_ns, st_.st_size)
    except OSError:
        return (None, None)


@st.cache_resource(show_spinner="Loading the model ...", max_entries=4)
def _model(model_dir: str, stamp: tuple) -> ChurnModel:  # noqa: ARG001 - the stamp is the cache key
    return ChurnModel.load(model_dir)


def cached_model(model_dir: str | os.PathLike) -> ChurnModel:
    """The verified :class:`churnlib.model.ChurnModel` in ``model_dir``, loaded once per artifact version.

    Raises
    ------
    churnlib.artifact.ArtifactError
        Tampered, incomplete or incompatible artifact.
    """
    model_dir = Path(model_dir)
    return _model(str(model_dir), _stat(model_dir / ARTIFACT_NAME))


def page_products(*needs: str) -> Products:
    """The cached products for a page; when one of ``needs`` is missing, a plain message and ``st.stop()``.

    Parameters
    ----------
    *needs : str
        Names of :data:`churnlib.dashboard.views.NEEDS` (``"risk"``, ``"features"``, ``"model"``, ...).

    Returns
    -------
    Products
    """
    products = cached_products()
    message = views.missing_message(products, needs)
    if message:
        st.info(message)
        st.stop()
    return products


@st.cache_resource(show_spinner="Loading the what-if model ...", max_entries=4)
def _whatif(model_dir: str, stamp: tuple) -> WhatIfModel:  # noqa: ARG001 - the stamp is the cache key
    return WhatIfModel.load(model_dir)


def cached_whatif(model_dir: str | os.PathLike) -> WhatIfModel:
    """The verified what-if model (:class:`churnlib.whatif.WhatIfModel`) in ``model_dir``, loaded once per
    version of its files.

    Raises
    ------
    churnlib.artifact.ArtifactError
        Absent, tampered or incompatible (:meth:`churnlib.whatif.WhatIfModel.load`).
    """
    model_dir = Path(model_dir)
    return _whatif(str(model_dir), (_stat(model_dir / WHATIF_NAME), _stat(model_dir / MANIFEST_NAME)))
