"""Router: patterns with ``{name}`` parameters, leading slashes, 404 versus 405, HEAD."""

from __future__ import annotations

import pytest

from hyper2web.router import Router, Routes


async def h_user(request, response) -> None: ...


async def h_other(request, response) -> None: ...


async def h_post(request, response) -> None: ...


def test_original_router_example() -> None:
    router = Router(None)
    router.register("GET", "user/{userId}/name/{name}", h_user)
    match = router.resolve("GET", "/user/abc/name/Albert")
    assert match.handler is h_user
    assert match.params == {"userId": "abc", "name": "Albert"}
    assert router.find_match("user/abc/name/Albert") == (
        "/user/{userId}/name/{name}", {"userId": "abc", "name": "Albert"})
    assert router.find_match("/user/abc/name/Albert")[1] == {"userId": "abc", "name": "Albert"}


def test_find_match_one_parameter() -> None:
    router = Router(None)
    router.register("GET", "user/{userId}", h_user)
    assert router.find_match("user/abc") == ("/user/{userId}", {"userId": "abc"})
    assert router.find_match("user/abc/more") == (None, {})
    assert router.find_match("user/") == (None, {})
    assert router.find_match("nothing") == (None, {})


@pytest.mark.parametrize("registered", ["top10", "/top10", " top10 "])
@pytest.mark.parametrize("asked", ["/top10"])
def test_leading_slash_is_optional(registered, asked) -> None:
    router = Router()
    router.register("GET", registered, h_user)
    assert router.resolve("GET", asked).handler is h_user
    assert router.find_match("top10")[0] == "/top10"


def test_same_route_with_and_without_slash_is_one_route() -> None:
    router = Router()
    router.register("GET", "items", h_user)
    router.register("GET", "/items", h_other)
    assert router.resolve("GET", "/items").handler is h_other
    assert router.routes == [("GET", "/items")]


def test_parameter_matches_one_segment_only() -> None:
    router = Router()
    router.register("GET", "/files/{name}", h_user)
    assert router.resolve("GET", "/files/a.txt").params == {"name": "a.txt"}
    assert router.resolve("GET", "/files/a/b.txt").handler is None
    assert router.resolve("GET", "/files/").handler is None


def test_parameters_are_percent_decoded() -> None:
    router = Router()
    router.register("GET", "/user/{name}", h_user)
    assert router.resolve("GET", "/user/J%C3%BCrgen%20K").params == {"name": "Jürgen K"}


def test_plain_route_wins_over_pattern() -> None:
    router = Router()
    router.register("GET", "/user/{id}", h_user)
    router.register("GET", "/user/me", h_other)
    assert router.resolve("GET", "/user/me").handler is h_other
    assert router.resolve("GET", "/user/42").handler is h_user


def test_method_mismatch_tells_allowed_methods() -> None:
    router = Router()
    router.register("GET", "/thing", h_user)
    router.register("POST", "/thing", h_post)
    match = router.resolve("DELETE", "/thing")
    assert match.handler is None
    assert match.allowed == ("GET", "HEAD", "POST")
    pattern = Router()
    pattern.register("PUT", "/thing/{id}", h_post)
    match = pattern.resolve("GET", "/thing/1")
    assert match.handler is None
    assert match.allowed == ("PUT",)


def test_no_route_is_neither_handler_nor_allowed() -> None:
    router = Router()
    router.register("GET", "/thing", h_user)
    match = router.resolve("GET", "/other")
    assert match.handler is None
    assert match.allowed == ()


def test_get_answers_head_but_not_the_reverse() -> None:
    router = Router()
    router.register("GET", "/a", h_user)
    assert router.resolve("HEAD", "/a").handler is h_user
    router.register("HEAD", "/b", h_other)
    assert router.resolve("GET", "/b").handler is None


def test_explicit_head_handler_wins() -> None:
    router = Router()
    router.register("GET", "/a", h_user)
    router.register("HEAD", "/a", h_other)
    assert router.resolve("HEAD", "/a").handler is h_other


def test_methods_are_case_insensitive_at_registration() -> None:
    router = Router()
    router.register("post", "/a", h_post)
    assert router.resolve("POST", "/a").handler is h_post


def test_bad_registrations_raise() -> None:
    router = Router()
    with pytest.raises(ValueError):
        router.register("BREW", "/coffee", h_user)
    with pytest.raises(TypeError):
        router.register("GET", "/a", "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        router.register("GET", "/a/{id}/{id}", h_user)
    with pytest.raises(ValueError):
        router.register("GET", "/a/{id", h_user)


def test_path_parameter_takes_the_rest() -> None:
    router = Router()
    router.register("GET", "/raw/{rest:path}", h_user)
    assert router.resolve("GET", "/raw/a/b/c").params == {"rest": "a/b/c"}


def test_regex_characters_in_routes_are_literal() -> None:
    router = Router()
    router.register("GET", "/v1.0/{id}", h_user)
    assert router.resolve("GET", "/v1.0/7").params == {"id": "7"}
    assert router.resolve("GET", "/v1x0/7").handler is None


def test_routes_decorators_collect_entries() -> None:
    routes = Routes()

    @routes.get("a")
    async def a(request, response) -> None: ...

    @routes.post("/b")
    async def b(request, response) -> None: ...

    assert routes.entries == [("GET", "a", a), ("POST", "/b", b)]
