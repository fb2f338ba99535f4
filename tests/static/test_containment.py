"""Nothing from outside the root, also when the tree changes under a served URL: a folder
swapped for a symlink that leads out gives 404 on the very next request, for the file, its
precompressed sibling and a range of it; listings say nothing about targets outside."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import brotli
import httpx
import pytest

SECRET = b"outside the root: never served\n" * 10
INSIDE = b"inside the root\n" * 10


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """``public/swap/secret.txt`` (inside) and ``outside/secret.txt`` (the same names)."""
    public = tmp_path / "public"
    (public / "swap" / "deeper").mkdir(parents=True)
    (public / "swap" / "secret.txt").write_bytes(INSIDE)
    (public / "swap" / "secret.txt.br").write_bytes(brotli.compress(INSIDE))
    (public / "swap" / "deeper" / "page.txt").write_bytes(INSIDE)
    outside = tmp_path / "outside"
    (outside / "deeper").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "secret.txt.br").write_bytes(brotli.compress(SECRET))
    (outside / "deeper" / "page.txt").write_bytes(SECRET)
    return public, outside


def swap_for_symlink(folder: Path, target: Path) -> None:
    shutil.rmtree(folder)
    os.symlink(target, folder)


@pytest.mark.parametrize("path, headers", [
    ("/swap/secret.txt", {}),
    ("/swap/secret.txt", {"accept-encoding": "br"}),
    ("/swap/secret.txt", {"range": "bytes=0-9"}),
    ("/swap/deeper/page.txt", {}),
])
def test_a_folder_swapped_for_an_outside_symlink_is_404_at_once(
        serve_app, client: httpx.Client, tree: tuple[Path, Path], path: str,
        headers: dict[str, str]) -> None:
    public, outside = tree
    server = serve_app(root=public)
    for _ in range(3):  # remembered, with its stat and cached body
        first = client.get(server.url + path, headers=headers)
        assert first.status_code in (200, 206)
        assert first.content in (INSIDE, INSIDE[:10])
    swap_for_symlink(public / "swap", outside)
    for _ in range(3):
        again = client.get(server.url + path, headers=headers)
        assert again.status_code == 404, again.content[:80]
        assert b"outside the root" not in again.content


def test_a_swapped_folder_serves_again_once_it_is_a_folder(
        serve_app, client: httpx.Client, tree: tuple[Path, Path]) -> None:
    public, outside = tree
    server = serve_app(root=public)
    assert client.get(server.url + "/swap/secret.txt").content == INSIDE
    swap_for_symlink(public / "swap", outside)
    assert client.get(server.url + "/swap/secret.txt").status_code == 404
    os.unlink(public / "swap")
    (public / "swap").mkdir()
    (public / "swap" / "secret.txt").write_bytes(b"back\n")
    response = client.get(server.url + "/swap/secret.txt")
    assert response.status_code == 200 and response.content == b"back\n"


def test_a_symlink_inside_the_root_is_still_served(
        serve_app, client: httpx.Client, tree: tuple[Path, Path]) -> None:
    public, _ = tree
    os.symlink(public / "swap", public / "alias")
    server = serve_app(root=public)
    for _ in range(2):
        assert client.get(server.url + "/alias/secret.txt").content == INSIDE


def test_listings_say_nothing_about_targets_outside(
        serve_app, client: httpx.Client, tree: tuple[Path, Path]) -> None:
    public, outside = tree
    listed = public / "listed"
    listed.mkdir()
    (listed / "here.txt").write_bytes(INSIDE)
    os.symlink(outside / "secret.txt", listed / "leak.txt")
    os.symlink(outside, listed / "leakdir")
    os.symlink(public / "swap" / "secret.txt", listed / "fine.txt")
    server = serve_app(root=public)
    page = client.get(server.url + "/listed/").text
    assert "here.txt" in page and "fine.txt" in page
    assert "leak.txt" not in page and "leakdir" not in page


def test_a_file_is_not_opened_through_a_folder_swapped_for_a_symlink(
        tree: tuple[Path, Path]) -> None:
    """A folder's check (or a file's stat shared by requests that arrived together) may
    predate a swap: opening the file named must then fail, not read the target outside."""
    from hyper2web.files import open_file

    public, outside = tree
    path = os.path.realpath(public / "swap" / "deeper" / "page.txt")
    with open_file(path) as fh:
        assert fh.read() == INSIDE
    swap_for_symlink(public / "swap", outside)
    with pytest.raises(OSError):
        open_file(path)
    os.symlink(outside / "deeper", public / "alias")  # a symlink named as such still opens
    with open(public / "alias" / "page.txt", "rb") as fh:
        assert fh.read() == SECRET
