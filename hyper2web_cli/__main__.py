"""``python -m hyper2web_cli`` runs the same command as ``hyper2web``."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="hyper2web")
