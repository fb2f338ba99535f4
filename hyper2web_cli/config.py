"""``hyper2web.toml`` beside the served folder: defaults for every ``serve`` option.

    # hyper2web.toml
    port = 8443
    spa = true
    header = ["X-Frame-Options: DENY"]
    ignore = ["*.log"]

Keys are the option names without the dashes (``no-list`` or ``no_list``). A flag given on
the command line wins over the file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "hyper2web.toml"


def config_path(root: Path) -> Path:
    return root.resolve().parent / CONFIG_NAME


def load_config(root: Path) -> tuple[Path | None, dict[str, Any]]:
    """The file's path and its settings (keys with underscores), or ``(None, {})``."""
    path = config_path(root)
    if not path.is_file():
        return None, {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    section = data.get("serve", data)
    return path, {key.replace("-", "_"): value for key, value in section.items()}


def apply_config(ctx: click.Context, values: dict[str, Any]) -> Path | None:
    """Fill every option the user did not type from ``hyper2web.toml``; returns its path."""
    path, settings = load_config(Path(values["root"]))
    if not settings:
        return path
    params = {p.name: p for p in ctx.command.params if p.name}
    aliases = {"headers": "header", "ignores": "ignore", "routes_file": "routes"}
    by_key = {aliases.get(name, name): name for name in params}
    for key, value in settings.items():
        name = by_key.get(key)
        if name is None or name == "root":
            known = ", ".join(sorted(k for k in by_key if k != "root"))
            raise click.ClickException(f"{path}: unknown setting {key!r} (known: {known})")
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
            continue
        param = params[name]
        if param.multiple and not isinstance(value, list):
            value = [value]
        try:
            converted = param.type_cast_value(ctx, value)
            if param.callback is not None:
                converted = param.callback(ctx, param, converted)
        except click.BadParameter as exc:
            raise click.ClickException(f"{path}: {key}: {exc.message}") from None
        values[name] = converted
    return path
