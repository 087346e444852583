"""Estimator parameters from one place, as scikit-learn's ``BaseEstimator`` does: the parameters
are the constructor's arguments, stored under the same names, so ``get_params`` reads them from the
signature instead of a hand-written list that can fall out of step."""

from __future__ import annotations

import inspect
from typing import Any, Self


class Params:
    """Mixin: ``get_params`` / ``set_params`` from the ``__init__`` signature."""

    @classmethod
    def param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters and their current values (JSON-friendly: tuples as lists)."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name in self.param_names()
            for value in [getattr(self, name)]
        }

    def set_params(self, **params: Any) -> Self:
        unknown = set(params) - set(self.param_names())
        if unknown:
            raise ValueError(f"unknown parameters for {type(self).__name__}: {sorted(unknown)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self
