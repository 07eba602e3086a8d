"""Container names and image references: Docker's grammar and normalisation, by example and by property."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from worker.errors import InvalidRequest
from worker.reference import (
    DIGEST,
    DOMAIN_NAME_COMPONENT,
    IPV6_ADDRESS,
    PATH_COMPONENT,
    REFERENCE,
    TAG,
    ImageReference,
    parse_image_reference,
    same_repository,
    validate_container_name,
)

DIGEST_A = "sha256:" + "a" * 64


def regex(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(re.compile(pattern, re.ASCII), fullmatch=True)


# --- container names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("hmm-local", "hmm-local"),
    ("/hmm-local", "hmm-local"),
    ("a1", "a1"),
    ("0.b_c-d", "0.b_c-d"),
    ("x" * 255, "x" * 255),
    ("/" + "x" * 255, "x" * 255),
])
def test_valid_container_names_lose_the_leading_slash(name: str, expected: str) -> None:
    assert validate_container_name(name) == expected


@pytest.mark.parametrize("name", [
    "", "a", "/", "//ab", "_ab", "-ab", ".ab", "a b", "ab/c", "ab:c", "héllo", "ab\n", "x" * 256,
])
def test_invalid_container_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest, match="container name"):
        validate_container_name(name)


@given(regex(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]{1,254}"))
def test_every_name_in_the_grammar_is_accepted(name: str) -> None:
    assert validate_container_name(name) == name.removeprefix("/")


@given(st.text())
def test_any_other_text_is_refused_with_invalid_request(name: str) -> None:
    try:
        bare = validate_container_name(name)
    except InvalidRequest:
        return
    assert re.fullmatch(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+", name, re.ASCII) and len(bare) <= 255


# --- image references: examples ----------------------------------------------------------------------


@pytest.mark.parametrize(("ref", "domain", "path", "tag", "digest"), [
    ("ubuntu", "docker.io", "library/ubuntu", None, None),
    ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
    ("renegadeuk/hmm-local:main-abc1234", "docker.io", "renegadeuk/hmm-local", "main-abc1234", None),
    ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, None),
    ("index.docker.io/library/ubuntu:latest", "docker.io", "library/ubuntu", "latest", None),
    ("ghcr.io/renegadeuk/hmm-local:main-abc1234", "ghcr.io", "renegadeuk/hmm-local", "main-abc1234", None),
    ("127.0.0.1:5000/hmmt-1/app:main-1234567", "127.0.0.1:5000", "hmmt-1/app", "main-1234567", None),
    ("localhost/app", "localhost", "app", None, None),
    ("localhost:5000/a/b/c", "localhost:5000", "a/b/c", None, None),
    ("[::1]:5000/app:v1", "[::1]:5000", "app", "v1", None),
    ("Registry/app", "Registry", "app", None, None),  # an uppercase first component can only be a host
    (f"ubuntu@{DIGEST_A}", "docker.io", "library/ubuntu", None, DIGEST_A),
    (f"ghcr.io/a/b:v1@{DIGEST_A}", "ghcr.io", "a/b", "v1", DIGEST_A),
    ("a__b/c-----d/e.f_g", "docker.io", "a__b/c-----d/e.f_g", None, None),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # docker reads this as name:tag
])
def test_references_parse_and_normalise_like_docker(ref: str, domain: str, path: str, tag: str | None,
                                                    digest: str | None) -> None:
    parsed = parse_image_reference(ref)
    assert (parsed.domain, parsed.path, parsed.tag, parsed.digest) == (domain, path, tag, digest)
    assert parsed.repository == f"{domain}/{path}"
    assert str(parsed) == ref


def test_name_is_kept_as_written() -> None:
    assert parse_image_reference("ubuntu:22.04").name == "ubuntu"
    assert parse_image_reference(f"ghcr.io/a/b:v1@{DIGEST_A}").name == "ghcr.io/a/b"


@pytest.mark.parametrize("ref", [
    "", " ", "ubuntu ", " ubuntu", "Ubuntu", "renegadeuk/Hmm-local", "ghcr.io/Renegadeuk/x", "a b",
    "-ubuntu", "ubuntu-", "ubuntu.", "a..b", "a___b", "a_-b", "/ubuntu", "ubuntu/", "a//b",
    "ubuntu:", "ubuntu:-tag", "ubuntu:.tag", "ubuntu:" + "t" * 129, "ubuntu:tag:tag", "ubuntu@",
    "ubuntu@sha256:abc",
    "ubuntu@sha256:" + "g" * 64, "https://ghcr.io/a/b", "ghcr.io:port/a", "a_b.c/d", "-a.io/b", "[::1/a",
    "ghcr.io/" + "a" * 250, "a" * 64, "ubuntü", "ubuntu:tä", "ubuntu\n",
])
def test_malformed_references_are_refused(ref: str) -> None:
    with pytest.raises(InvalidRequest, match="image reference"):
        parse_image_reference(ref)


def test_uppercase_repository_gets_a_clear_message() -> None:
    with pytest.raises(InvalidRequest, match="must be lowercase"):
        parse_image_reference("ghcr.io/RenegadeUK/hmm-local:main-abc1234")


def test_longest_name_is_accepted() -> None:
    ref = "ghcr.io/" + "a" * (255 - len("ghcr.io/"))
    assert parse_image_reference(ref + ":v1").path == "a" * 247


def test_same_repository_compares_normalised_names() -> None:
    assert same_repository("ubuntu", "docker.io/library/ubuntu:latest")
    assert same_repository(f"index.docker.io/library/ubuntu@{DIGEST_A}", parse_image_reference("ubuntu:2"))
    assert same_repository("ghcr.io/a/b:main-1", "ghcr.io/a/b:main-2")
    assert not same_repository("ghcr.io/a/b", "ghcr.io/a/c")
    assert not same_repository("localhost:5000/app", "localhost/app")
    assert not same_repository("renegadeuk/hmm-local", "ghcr.io/renegadeuk/hmm-local")


def test_with_tag_keeps_the_written_name_and_drops_the_digest() -> None:
    ref = parse_image_reference(f"ubuntu:20.04@{DIGEST_A}")
    assert str(ref.with_tag("main-abc1234")) == "ubuntu:main-abc1234"
    with pytest.raises(InvalidRequest):
        ref.with_tag("bad tag")


# --- image references: properties --------------------------------------------------------------------

ports = regex(r"[0-9]+")
hosts = st.one_of(
    st.lists(regex(DOMAIN_NAME_COMPONENT), min_size=2, max_size=4).map(".".join),
    st.just("localhost"),
    regex(DOMAIN_NAME_COMPONENT).filter(lambda c: c != c.lower()),
    regex(IPV6_ADDRESS),
)


def looks_like_a_host(domain: str) -> bool:
    # Docker reads a first component as the registry only if it has '.' or ':', is `localhost`, or has an
    # uppercase letter; the grammar allows other hosts, but docker would take them for path components.
    return domain == "localhost" or ":" in domain or "." in domain or domain != domain.lower()


domains = st.builds(lambda host, port: host if port is None else f"{host}:{port}",
                    hosts, st.none() | ports).filter(looks_like_a_host)
paths = st.lists(regex(PATH_COMPONENT), min_size=1, max_size=4)
tags = st.none() | regex(TAG)
digests = st.none() | regex(DIGEST)


@given(st.none() | domains, paths, tags, digests)
@example("index.docker.io", ["ubuntu"], None, None)
def test_every_reference_in_the_grammar_parses_and_round_trips(
        domain: str | None, components: list[str], tag: str | None, digest: str | None) -> None:
    if domain is None and len(components) > 1:
        assume("." not in components[0])  # docker would read it as a registry host
    path = "/".join(components)
    name = path if domain is None else f"{domain}/{path}"
    ref = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    normalised_domain = "docker.io" if domain in (None, "docker.io", "index.docker.io") else domain
    normalised_path = f"library/{path}" if normalised_domain == "docker.io" and len(components) == 1 else path
    assume(len(f"{normalised_domain}/{normalised_path}") <= 255 and not re.fullmatch(r"[a-f0-9]{64}", ref))

    parsed = parse_image_reference(ref)

    assert parsed == ImageReference(normalised_domain, normalised_path, tag, digest, name)
    assert str(parsed) == ref
    assert parse_image_reference(str(parsed)) == parsed
    assert same_repository(parsed, f"{normalised_domain}/{normalised_path}:x")


@given(st.text())
@example("ghcr.io/a/b:v1\n")
def test_arbitrary_text_is_refused_or_in_the_grammar(text: str) -> None:
    try:
        parsed = parse_image_reference(text)
    except InvalidRequest:
        return
    assert re.fullmatch(REFERENCE, text, re.ASCII)
    assert str(parsed) == text


@given(st.none() | domains, paths, tags, st.data())
def test_a_stray_character_makes_a_reference_invalid(domain: str | None, components: list[str],
                                                     tag: str | None, data: st.DataObject) -> None:
    ref = ("" if domain is None else f"{domain}/") + "/".join(components) + (f":{tag}" if tag else "")
    stray = data.draw(st.sampled_from(" !#$%&()*,;<=>?^`{|}~\"'\\\t\né"))
    at = data.draw(st.integers(0, len(ref)))
    with pytest.raises(InvalidRequest):
        parse_image_reference(ref[:at] + stray + ref[at:])


@given(st.none() | domains, paths, st.data())
def test_an_uppercase_repository_is_refused(domain: str | None, components: list[str],
                                            data: st.DataObject) -> None:
    last = components[-1]
    at = data.draw(st.integers(0, len(last)))
    components[-1] = last[:at] + data.draw(st.sampled_from("ABCXYZ")) + last[at:]
    ref = ("" if domain is None else f"{domain}/") + "/".join(components)
    with pytest.raises(InvalidRequest):
        parse_image_reference(ref)
