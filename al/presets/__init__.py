"""Shipped run configs (`al run smoke`, `al run demo`, ...): TOML files, loaded by `al.config.load_config`."""
