"""``hyper2web.toml`` beside the served folder: defaults for every ``serve`` option.

    # hyper2web.toml
    port = 8443
    spa = true
    header = ["X-Frame-Options: DENY"]
    ignore = ["*.log"]

    [proxy]
    "/api" = "http://localhost:8000"

Keys are the option names without the dashes (``no-list`` or ``no_list``). A flag given on
the command line wins over the file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

CONFIG_NAME = "hyper2web.toml"


def config_path(root: Path) -> Path:
    return root.resolve().parent / CONFIG_NAME


def load_config(root: Path) -> tuple[Path | None, dict[str, Any]]:
    """The file's path and its settings (keys with underscores), or ``(None, {})``."""
    path = config_path(root)
    if not path.is_file():
        return None, {}
    # Loaded here: most starts have no config file.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    section = data.get("serve", data)
    return path, {key.replace("-", "_"): value for key, value in section.items()}


# Settings named as the option, where the parameter's own name differs.
_ALIASES = {"headers": "header", "ignores": "ignore", "routes_file": "routes",
            "open_browser": "open", "proxies": "proxy", "watches": "watch"}


class ConfigCommand(click.Command):
    """A command whose option defaults come from ``hyper2web.toml`` beside its ROOT.

    The file is read before the options are parsed and handed to click as the context's
    ``default_map``, so click converts and checks its values like typed ones and a value typed
    on the command line wins. Which file is used depends on ROOT, so ROOT is picked out of the
    arguments first.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        path, settings = load_config(Path(self._root(ctx, args)))
        ctx.meta[CONFIG_NAME] = path
        if settings:
            ctx.default_map = {**(ctx.default_map or {}), **self._defaults(path, settings)}
        try:
            return super().parse_args(ctx, args)
        except click.BadParameter as exc:
            name = exc.param.name if exc.param is not None else None
            if name is None or ctx.get_parameter_source(name) is not \
                    click.core.ParameterSource.DEFAULT_MAP:
                raise
            raise click.ClickException(f"{path}: {_ALIASES.get(name, name)}: "
                                       f"{exc.message}") from None

    def _root(self, ctx: click.Context, args: list[str]) -> str:
        """ROOT as typed, or its default; a usage error is left for the real parse."""
        default = next(p.default for p in self.params if p.name == "root")
        try:
            opts, _, _ = self.make_parser(ctx).parse_args(list(args))
        except click.UsageError:
            return str(default)
        root = opts.get("root")
        return root if isinstance(root, str) else str(default)

    def _defaults(self, path: Path | None, settings: dict[str, Any]) -> dict[str, Any]:
        """Settings keyed by parameter name; an unknown key is an error naming the file."""
        params = {_ALIASES.get(p.name, p.name): p for p in self.params
                  if p.name and p.name != "root"}
        defaults = {}
        for key, value in settings.items():
            param = params.get(key)
            if param is None or param.name is None:
                known = ", ".join(sorted(params))
                raise click.ClickException(f"{path}: unknown setting {key!r} (known: {known})")
            if param.name == "proxies" and isinstance(value, dict):
                # [proxy] table: "/api" = "http://localhost:8000"
                value = [f"{prefix}={url}" for prefix, url in value.items()]
            if param.multiple and not isinstance(value, list):
                value = [value]  # ``header = "X-A: 1"`` is a list of one
            defaults[param.name] = value
        return defaults


def config_used(ctx: click.Context) -> Path | None:
    """The ``hyper2web.toml`` that gave this command its defaults, if one did."""
    path = ctx.meta.get(CONFIG_NAME)
    return path if isinstance(path, Path) else None
