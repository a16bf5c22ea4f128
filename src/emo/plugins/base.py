"""The base class shared by the ABCs of all four plugin kinds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from emo.configuration import ConfigMixin, load_config

__all__ = ["PluginBase"]

_P = TypeVar("_P", bound="PluginBase")


class PluginBase(ConfigMixin):
    """Config, persistence and metadata common to every plugin base class.

    Attributes
    ----------
    name
        The registry name (``"ddim"``, ``"mp4"``, ...). Stamped into saved configs.
    description
        One line shown by ``emo plugins``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` into ``directory``; subclasses with weights add them.

        Returns
        -------
        Path
            The folder.
        """
        folder = Path(directory)
        self.save_config(folder)
        return folder

    @classmethod
    def from_pretrained(cls: type[_P], directory: str | os.PathLike[str], **overrides: Any) -> _P:
        """Rebuild an instance from a folder written by :meth:`save_pretrained`."""
        return cls.from_config(load_config(directory, cls.config_name), **overrides)
