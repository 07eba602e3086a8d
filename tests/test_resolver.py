"""Resolving the newest `main-<sha7>` image against the real registry and a stand-in GitHub."""

from __future__ import annotations

import base64
import io
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import docker
import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests import testbed
from worker.errors import ImageResolutionFailed, InvalidRequest
from worker.reference import parse_image_reference
from worker.registry import Login, RegistryClient, RegistryCredentials, api_base_url
from worker.resolver import ImageResolver
from worker.settings import Settings

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def full_sha(tag: str) -> str:
    """A 40-character commit sha whose first 7 characters are the tag's."""
    return tag.removeprefix("main-") + secrets.token_hex(20)[:33]


def unpushed_sha() -> str:
    return secrets.token_hex(20)


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run `app` on a loopback port in a thread; yields its base URL."""
    port = testbed.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off",
                            loop="asyncio", http="h11", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    testbed.wait_for(lambda: server.started, what="stand-in server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class FakeGitHub:
    """The commits endpoint of the GitHub REST API, answering with the commits a test sets."""

    commits: list[str] = field(default_factory=list)
    status: int = 200
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    async def list_commits(self, request: Request) -> Response:
        self.requests.append(request)
        if self.status != 200:
            return JSONResponse({"message": "API rate limit exceeded"}, status_code=self.status)
        return JSONResponse([{"sha": sha, "commit": {"message": "work"}} for sha in self.commits])


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    app = Starlette(routes=[Route("/repos/{owner}/{repo}/commits", fake.list_commits)])
    with serve(app) as url:
        fake.url = url
        yield fake


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def make_resolver(http: httpx.Client, github_url: str, *, token: str | None = None, tag_prefix: str = "main-",
                  credentials: RegistryCredentials | None = None) -> ImageResolver:
    return ImageResolver(http, github_api_url=github_url, github_repository="renegadeuk/hmm-local",
                         github_token=token, tag_prefix=tag_prefix, credentials=credentials)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{testbed.free_port()}"


# --- with GitHub -------------------------------------------------------------------------------------


@pytest.mark.docker
def test_newest_commit_without_an_image_is_skipped(http: httpx.Client, github: FakeGitHub,
                                                   images: testbed.TestImages) -> None:
    github.commits = [unpushed_sha(), full_sha(images.tags["v2"]), full_sha(images.tags["v1"])]

    latest = make_resolver(http, github.url).latest(images.ref("v1"))

    assert latest == images.ref("v2")
    [request] = github.requests
    assert request.url.path == "/repos/renegadeuk/hmm-local/commits"
    assert request.query_params["sha"] == "main" and int(request.query_params["per_page"]) >= 2
    assert "authorization" not in request.headers


@pytest.mark.docker
def test_github_token_is_sent_as_bearer(http: httpx.Client, github: FakeGitHub,
                                        images: testbed.TestImages) -> None:
    github.commits = [full_sha(images.tags["v3"])]

    assert make_resolver(http, github.url, token="gh-t0ken").latest(images.ref("v1")) == images.ref("v3")

    [request] = github.requests
    assert request.headers["authorization"] == "Bearer gh-t0ken"
    assert request.headers["accept"] == "application/vnd.github+json"


@pytest.mark.docker
def test_from_settings_uses_the_configured_github(github: FakeGitHub, images: testbed.TestImages,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no logins
    github.commits = [full_sha(images.tags["v3"])]
    settings = Settings(github_api_url=github.url, github_repository="someone/app",
                        github_token=SecretStr("from-settings"))

    resolver = ImageResolver.from_settings(settings)
    try:
        assert resolver.latest(images.ref("v1")) == images.ref("v3")
    finally:
        resolver.close()

    [request] = github.requests
    assert request.url.path == "/repos/someone/app/commits"
    assert request.headers["authorization"] == "Bearer from-settings"


@pytest.mark.docker
def test_no_commit_with_an_image_fails_clearly(http: httpx.Client, github: FakeGitHub,
                                               images: testbed.TestImages) -> None:
    github.commits = [unpushed_sha(), unpushed_sha()]

    with pytest.raises(ImageResolutionFailed, match="None of the last 2 commits"):
        make_resolver(http, github.url).latest(images.ref("v1"))


@pytest.mark.docker
def test_missing_repository_means_no_image(http: httpx.Client, github: FakeGitHub,
                                           images: testbed.TestImages) -> None:
    github.commits = [full_sha(images.tags["v2"])]

    with pytest.raises(ImageResolutionFailed, match="None of the last 1 commits"):
        make_resolver(http, github.url).latest(f"{images.registry}/hmmt-{images.run_id}/nothing:main-1234567")


def test_empty_commit_list_fails_clearly(http: httpx.Client, github: FakeGitHub) -> None:
    with pytest.raises(ImageResolutionFailed, match="GitHub lists no commits on renegadeuk/hmm-local@main"):
        make_resolver(http, github.url).latest("ghcr.io/renegadeuk/hmm-local:main-abc1234")


def test_unreachable_registry_fails_clearly(http: httpx.Client, github: FakeGitHub) -> None:
    github.commits = [unpushed_sha()]
    registry = closed_port_url().removeprefix("http://")

    with pytest.raises(ImageResolutionFailed, match=f"Registry {registry} unreachable"):
        make_resolver(http, github.url).latest(f"{registry}/team/app:main-abc1234")


def test_github_refusing_the_repository_is_not_a_fallback(http: httpx.Client, github: FakeGitHub) -> None:
    github.status = 404

    with pytest.raises(ImageResolutionFailed, match=r"GitHub answered 404.*GITHUB_REPOSITORY"):
        make_resolver(http, github.url).latest("ghcr.io/renegadeuk/hmm-local:main-abc1234")


def test_malformed_current_image_is_invalid_request(http: httpx.Client, github: FakeGitHub) -> None:
    with pytest.raises(InvalidRequest):
        make_resolver(http, github.url).latest("ghcr.io/RenegadeUK/Hmm Local:main")
    assert github.requests == []


# --- without GitHub: the registry's tags, newest by build date ------------------------------------------


@dataclass
class FallbackRepository:
    repository: str
    created: dict[str, datetime]  # main-<sha> tag -> the image config's `created`

    def ref(self, tag: str) -> str:
        return f"{self.repository}:{tag}"

    @property
    def newest(self) -> str:
        return max(self.created, key=lambda tag: self.created[tag])

    @property
    def oldest(self) -> str:
        return min(self.created, key=lambda tag: self.created[tag])


@pytest.fixture(scope="module")
def fallback_repository(docker_client: docker.DockerClient, images: testbed.TestImages) -> FallbackRepository:
    """v1..v3 under fresh tags, pushed newest first with the newest sorting first, plus a newer image
    under tags outside the `main-<sha>` pattern: only build dates can pick the right one."""
    repository = f"{images.registry}/hmmt-{images.run_id}/resolver-fallback"
    created = {key: datetime.fromisoformat(docker_client.images.get(images.ref(key)).attrs["Created"])
               for key in ("v1", "v2", "v3")}
    newest_first = sorted(created, key=lambda key: created[key], reverse=True)
    tagged = {}
    for rank, key in enumerate(newest_first):
        tag = f"main-{rank}{secrets.token_hex(3)}"
        docker_client.api.tag(images.ref(key), repository, tag)
        testbed.push(docker_client, f"{repository}:{tag}")
        tagged[tag] = created[key]

    dockerfile = f"FROM {images.base}\nLABEL hmmtest.nonce={secrets.token_hex(8)}\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{repository}:latest", rm=True,
                               labels={"hmmtest": "1"})
    for tag in ("latest", "main-abc12", "main-ABCDEF1", "main-abc1234-debug"):
        docker_client.api.tag(f"{repository}:latest", repository, tag)
        testbed.push(docker_client, f"{repository}:{tag}")
    return FallbackRepository(repository, tagged)


@pytest.mark.docker
@pytest.mark.parametrize("outage", ["connection refused", 500, 503, 403, 429])
def test_github_down_falls_back_to_the_newest_build(http: httpx.Client, github: FakeGitHub,
                                                    fallback_repository: FallbackRepository,
                                                    outage: str | int) -> None:
    if isinstance(outage, int):
        github.status = outage
    github_url = closed_port_url() if outage == "connection refused" else github.url

    latest = make_resolver(http, github_url).latest(fallback_repository.ref(fallback_repository.oldest))

    assert latest == fallback_repository.ref(fallback_repository.newest)


@pytest.mark.docker
def test_fallback_without_matching_tags_fails_clearly(http: httpx.Client,
                                                      fallback_repository: FallbackRepository) -> None:
    resolver = make_resolver(http, closed_port_url(), tag_prefix="nightly-")

    with pytest.raises(ImageResolutionFailed, match=r"GitHub is unavailable.*no dated nightly-<sha> tags"):
        resolver.latest(fallback_repository.ref("latest"))


@pytest.mark.docker
def test_created_of_an_index_is_its_first_manifest(http: httpx.Client,
                                                   fallback_repository: FallbackRepository) -> None:
    image = parse_image_reference(fallback_repository.ref(fallback_repository.oldest))
    manifests = f"{api_base_url(image.domain)}/v2/{image.path}/manifests"
    manifest = http.get(f"{manifests}/{image.tag}", headers={"Accept": DOCKER_MANIFEST})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": manifest.headers["Docker-Content-Digest"],
         "size": len(manifest.content), "platform": {"architecture": "amd64", "os": "linux"}},
    ]}
    put = http.put(f"{manifests}/multiarch", content=json.dumps(index), headers={"Content-Type": OCI_INDEX})
    assert put.status_code == 201, put.text

    registry = RegistryClient(http)
    assert registry.manifest_exists(image.with_tag("multiarch"))
    assert registry.created(image.with_tag("multiarch")) == fallback_repository.created[fallback_repository.oldest]


# --- registry authentication ---------------------------------------------------------------------------


@dataclass
class StandInRegistry:
    """A registry that has `team/app:main-<sha>` images and wants a bearer token or a basic login."""

    challenge: str  # "bearer" or "basic"
    tags: set[str] = field(default_factory=set)
    login: tuple[str, str] = ("robot", "s3cret")
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    token_requests: list[Request] = field(default_factory=list)
    manifest_requests: list[Request] = field(default_factory=list)
    tags_requests: list[Request] = field(default_factory=list)
    url: str = ""

    def basic(self) -> str:
        return "Basic " + base64.b64encode(":".join(self.login).encode()).decode()

    async def manifest(self, request: Request) -> Response:
        self.manifest_requests.append(request)
        if not self.authorized(request):
            return Response(status_code=401, headers={"WWW-Authenticate": self.www_authenticate()})
        if request.path_params["ref"] not in self.tags:
            return Response(status_code=404)
        return Response(status_code=200, media_type=DOCKER_MANIFEST)

    async def tags_list(self, request: Request) -> Response:
        """Tags in pages of `n`, linked the way distribution 3 does it (this Debian registry does not page)."""
        self.tags_requests.append(request)
        if not self.authorized(request):
            return Response(status_code=401, headers={"WWW-Authenticate": self.www_authenticate()})
        n, last = int(request.query_params["n"]), request.query_params.get("last", "")
        page = [tag for tag in sorted(self.tags) if tag > last][:n]
        headers = {}
        if page and page[-1] != max(self.tags):
            headers["Link"] = f'</v2/team/app/tags/list?last={page[-1]}&n={n}>; rel="next"'
        return JSONResponse({"name": "team/app", "tags": page}, headers=headers)

    def authorized(self, request: Request) -> bool:
        expected = f"Bearer {self.token}" if self.challenge == "bearer" else self.basic()
        return request.headers.get("authorization") == expected

    def www_authenticate(self) -> str:
        if self.challenge == "basic":
            return 'Basic realm="stand-in"'
        return f'Bearer realm="{self.url}/token",service="stand-in",scope="repository:team/app:pull"'

    async def issue_token(self, request: Request) -> Response:
        self.token_requests.append(request)
        if request.headers.get("authorization") != self.basic():
            return JSONResponse({"errors": [{"code": "UNAUTHORIZED"}]}, status_code=401)
        return JSONResponse({"token": self.token, "expires_in": 300})


@contextmanager
def stand_in_registry(challenge: str, tags: set[str]) -> Iterator[StandInRegistry]:
    registry = StandInRegistry(challenge, tags)
    app = Starlette(routes=[
        Route("/v2/{path:path}/manifests/{ref}", registry.manifest, methods=["GET", "HEAD"]),
        Route("/v2/{path:path}/tags/list", registry.tags_list),
        Route("/token", registry.issue_token),
    ])
    with serve(app) as url:
        registry.url = url
        yield registry


def write_docker_config(directory: Path, host: str, username: str, password: str) -> None:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


def test_bearer_challenge_fetches_a_token_with_the_docker_login(
        http: httpx.Client, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    github.commits = [unpushed_sha(), unpushed_sha(), "abc1234" + "0" * 33]
    with stand_in_registry("bearer", {"main-abc1234"}) as registry:
        host = registry.url.removeprefix("http://")
        write_docker_config(tmp_path, host, *registry.login)
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
        resolver = make_resolver(http, github.url, credentials=RegistryCredentials.from_docker_config())

        latest = resolver.latest(f"{host}/team/app:main-0000000")

    assert latest == f"{host}/team/app:main-abc1234"
    [token_request] = registry.token_requests  # one token serves every later request
    assert token_request.query_params["service"] == "stand-in"
    assert token_request.query_params["scope"] == "repository:team/app:pull"
    assert [r.method for r in registry.manifest_requests] == ["HEAD"] * 4  # 401, then three with the token


def test_bearer_token_refused_for_a_wrong_login(http: httpx.Client, github: FakeGitHub) -> None:
    github.commits = [unpushed_sha()]
    with stand_in_registry("bearer", set()) as registry:
        host = registry.url.removeprefix("http://")
        credentials = RegistryCredentials({host: Login("robot", "wrong")})

        with pytest.raises(ImageResolutionFailed, match=r"Token server .* answered 401") as failure:
            make_resolver(http, github.url, credentials=credentials).latest(f"{host}/team/app:main-0000000")

    assert "wrong" not in str(failure.value)


def test_basic_challenge_is_answered_with_the_login(http: httpx.Client, github: FakeGitHub) -> None:
    github.commits = ["abc1234" + "0" * 33]
    with stand_in_registry("basic", {"main-abc1234"}) as registry:
        host = registry.url.removeprefix("http://")
        credentials = RegistryCredentials({f"https://{host}/v1/": Login(*registry.login)})

        assert make_resolver(http, github.url, credentials=credentials).latest(f"{host}/team/app:v0") == (
            f"{host}/team/app:main-abc1234")

        with pytest.raises(ImageResolutionFailed, match="needs a login"):
            make_resolver(http, github.url).latest(f"{host}/team/app:v0")


def test_tags_follow_link_pagination_with_the_token(http: httpx.Client) -> None:
    tags = {f"main-{secrets.token_hex(4)[:7]}" for _ in range(5)} | {"latest"}
    with stand_in_registry("bearer", tags) as registry:
        host = registry.url.removeprefix("http://")
        client = RegistryClient(http, RegistryCredentials({host: Login(*registry.login)}))

        listed = client.tags(parse_image_reference(f"{host}/team/app"), page_size=2)

    assert sorted(listed) == sorted(tags)
    assert len(registry.tags_requests) == 1 + 3  # a 401, then three pages
    assert len(registry.token_requests) == 1


# --- small pure parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("domain", "base"), [
    ("docker.io", "https://registry-1.docker.io"),
    ("ghcr.io", "https://ghcr.io"),
    ("10.0.0.5:5000", "https://10.0.0.5:5000"),
    ("localhost.example.com", "https://localhost.example.com"),
    ("127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("127.3.2.1", "http://127.3.2.1"),
    ("localhost:5000", "http://localhost:5000"),
    ("[::1]:5000", "http://[::1]:5000"),
])
def test_registry_api_base_url(domain: str, base: str) -> None:
    assert api_base_url(domain) == base


def test_docker_config_logins_match_by_host(tmp_path: Path) -> None:
    write_docker_config(tmp_path, "https://index.docker.io/v1/", "hubuser", "hubpass")

    credentials = RegistryCredentials.from_docker_config(tmp_path / "config.json")

    assert credentials.for_registry("docker.io") == Login("hubuser", "hubpass")
    assert credentials.for_registry("ghcr.io") is None
    assert "hubpass" not in repr(credentials) + repr(credentials.for_registry("docker.io"))
    assert RegistryCredentials.from_docker_config(tmp_path / "missing.json").for_registry("docker.io") is None
