"""drorch's model of the estate: the schema of ``drorch.yaml`` and its loader."""

from drorch.config.loader import find_config_path, load_config
from drorch.config.schema import Config

__all__ = ["Config", "find_config_path", "load_config"]
