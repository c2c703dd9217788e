"""A local stand-in for the Hugging Face Hub HTTP API, for tests that push to and load from "the Hub" offline.

`LocalHub` serves, on 127.0.0.1 and a free port, what the real `huggingface_hub` and `transformers` clients call to
create model repos and branches, commit files and download them again; the `hub_server` fixture points those clients
at it. It keeps the Hub's semantics where the clients depend on them: commits are revisions (files resolve at the
commit sha, at the branch name and, for `main`, at `main`), committing to a missing branch fails, private repos are
visible to their owner only, errors carry the `X-Error-Code` header the clients turn into typed exceptions.

Every upload is answered `"uploadMode": "regular"`, so file contents travel base64-encoded inside the commit call and
no LFS or Xet storage is needed. Blobs live in a temporary folder, named by their git blob sha1; repos, commits and
refs live in memory.

A request the server does not know is answered 501 with its path and recorded in `LocalHub.unhandled` (the fixture
fails the test on teardown), so a route the clients need and the server lacks is obvious. Fault injection:
`fail_next_commits` and `hang_next_commits` make the next commit calls answer an HTTP error, or stall, without
committing anything.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

TEST_USER = "sepnorm-tester"
TEST_TOKEN = "hf_local_hub_test_token"
OTHER_USER = "someone-else"
OTHER_TOKEN = "hf_local_hub_other_token"

# what the Hub commits first in every new repo
INITIAL_GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
)


def git_blob_sha1(content: bytes) -> str:
    """The id git gives a file's content, which the Hub uses as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def iso_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def card_metadata(readme: bytes) -> dict | None:
    """The YAML header of a README.md, None without one; raises yaml.YAMLError if it does not parse."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme.decode("utf-8"), flags=re.DOTALL)
    return yaml.safe_load(match.group(1)) if match else None


class HubError(Exception):
    """An error answer: HTTP status, message, and the `X-Error-Code` the clients map to exception types."""

    def __init__(
        self, status: int, message: str, error_code: str | None = None, headers: dict | None = None, **extra_body
    ):
        super().__init__(message)
        self.status, self.message, self.error_code, self.headers = status, message, error_code, headers or {}
        self.extra_body = extra_body


@dataclasses.dataclass
class Commit:
    oid: str
    parent: str | None
    files: dict[str, str]  # path -> blob sha1
    title: str
    date: str


@dataclasses.dataclass
class Repo:
    repo_id: str
    owner: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)
    branches: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> commit oid
    pull_requests: list[str] = dataclasses.field(default_factory=list)  # head commit oid of refs/pr/<index + 1>

    def resolve(self, revision: str) -> Commit:
        """The commit a branch name, `refs/heads/<branch>`, `refs/pr/<n>` or (possibly short) commit sha names."""
        name = revision.removeprefix("refs/heads/")
        if name in self.branches:
            return self.commits[self.branches[name]]
        if match := re.fullmatch(r"refs/pr/(\d+)", revision):
            number = int(match.group(1))
            if 1 <= number <= len(self.pull_requests):
                return self.commits[self.pull_requests[number - 1]]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matching = [commit for oid, commit in self.commits.items() if oid.startswith(revision)]
            if len(matching) == 1:
                return matching[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


@dataclasses.dataclass
class CommitFaults:
    """What the next commit calls do instead of committing."""

    failures: int = 0
    failure_status: int = 500
    hangs: int = 0
    hang_seconds: float = 0.0


class LocalHub:
    """The server: storage, the HTTP front end in a background thread, fault injection and a log of requests."""

    def __init__(self, root: Path):
        self.blobs = root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tokens = {TEST_TOKEN: TEST_USER, OTHER_TOKEN: OTHER_USER}
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.unhandled: list[str] = []
        self.faults = CommitFaults()
        self.lock = threading.RLock()
        self._stopping = threading.Event()  # wakes up requests hanging on purpose when the server stops
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), HubRequestHandler)
        self._http.daemon_threads = True
        self._http.hub = self  # what the handlers serve
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHub:
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    # ---- fault injection ----

    def fail_next_commits(self, count: int = 1, status: int = 500) -> None:
        """The next `count` commit calls answer HTTP `status` and commit nothing."""
        with self.lock:
            self.faults.failures, self.faults.failure_status = count, status

    def hang_next_commits(self, seconds: float, count: int = 1) -> None:
        """The next `count` commit calls wait `seconds` (or until the server stops), then answer 500 and commit
        nothing: a client with a shorter timeout gives up first."""
        with self.lock:
            self.faults.hangs, self.faults.hang_seconds = count, seconds

    def take_commit_fault(self) -> None:
        with self.lock:
            if self.faults.hangs:
                self.faults.hangs -= 1
                seconds = self.faults.hang_seconds
            elif self.faults.failures:
                self.faults.failures -= 1
                raise HubError(self.faults.failure_status, "Internal Error - injected commit failure")
            else:
                return
        self._stopping.wait(seconds)
        raise HubError(500, f"Internal Error - the commit hung for {seconds} s")

    # ---- inspection, for assertions ----

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Every file of `repo_id` at `revision`, with its content."""
        with self.lock:
            commit = self.repos[repo_id].resolve(revision)
            return {path: self.read_blob(oid) for path, oid in commit.files.items()}

    def history(self, repo_id: str, revision: str = "main") -> list[Commit]:
        """The commits reachable from `revision`, newest first."""
        with self.lock:
            repo = self.repos[repo_id]
            commits, oid = [], repo.resolve(revision).oid
            while oid is not None:
                commits.append(repo.commits[oid])
                oid = repo.commits[oid].parent
            return commits

    def calls(self, method: str, pattern: str) -> int:
        """How many requests `method` sent to a path matching the regex `pattern`."""
        return sum(1 for m, path in self.requests if m == method and re.search(pattern, path))

    # ---- storage ----

    def write_blob(self, content: bytes) -> str:
        oid = git_blob_sha1(content)
        path = self.blobs / oid
        if not path.exists():
            path.write_bytes(content)
        return oid

    def read_blob(self, oid: str) -> bytes:
        return (self.blobs / oid).read_bytes()

    def user_for(self, authorization: str | None) -> str | None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        return self.tokens.get(token)

    def readable_repo(self, repo_id: str, user: str | None) -> Repo:
        """The repo, if it exists and `user` may see it; private repos look missing to everyone but their owner."""
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and repo.owner != user):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def writable_repo(self, repo_id: str, user: str | None) -> Repo:
        repo = self.readable_repo(repo_id, require_user(user))
        if repo.owner != user:
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def create_repo(self, user: str, name: str, organization: str | None, private: bool) -> Repo:
        namespace = organization or user
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a model under the namespace {namespace!r}")
        repo_id = f"{namespace}/{name}"
        with self.lock:
            if repo_id in self.repos:
                # the client reads the url of the existing repo from the conflict's body
                raise HubError(409, "You already created this model repo", url=f"{self.endpoint}/{repo_id}")
            repo = Repo(repo_id=repo_id, owner=user, private=private, created_at=iso_now())
            self.repos[repo_id] = repo
            initial = self.new_commit(
                repo, None, {".gitattributes": self.write_blob(INITIAL_GITATTRIBUTES)}, "initial commit"
            )
            repo.branches["main"] = initial.oid
            return repo

    def new_commit(self, repo: Repo, parent: Commit | None, files: dict[str, str], title: str) -> Commit:
        date = iso_now()
        seed = json.dumps([repo.repo_id, parent and parent.oid, sorted(files.items()), title, date, len(repo.commits)])
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent and parent.oid, files, title, date)
        repo.commits[commit.oid] = commit
        return commit


def require_user(user: str | None) -> str:
    if user is None:
        raise HubError(401, "Invalid credentials in Authorization header")
    return user


def is_true(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


# A route: HTTP methods, a regex over the raw (still percent-encoded) path, the handler method's name.
# `repo` is "<namespace>/<name>"; `rev` and tree paths arrive quoted with safe="" ("refs%2Fpr%2F1").
REPO = r"(?P<repo>[^/?]+/[^/?]+)"
ROUTES: list[tuple[tuple[str, ...], re.Pattern, str]] = [
    (("GET",), re.compile(r"/api/whoami-v2"), "whoami"),
    (("GET",), re.compile(r"/api/agent-harnesses"), "agent_harnesses"),
    (("POST",), re.compile(r"/api/repos/create"), "create_repo"),
    (("POST",), re.compile(r"/api/validate-yaml"), "validate_yaml"),
    (("GET",), re.compile(rf"/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?"), "model_info"),
    (("GET",), re.compile(rf"/api/spaces/{REPO}(?:/revision/(?P<rev>[^/]+))?"), "space_info"),
    (("POST",), re.compile(rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)"), "preupload"),
    (("POST",), re.compile(rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)"), "commit"),
    (("POST",), re.compile(rf"/api/models/{REPO}/branch/(?P<branch>[^/]+)"), "create_branch"),
    (("GET",), re.compile(rf"/api/models/{REPO}/refs"), "list_refs"),
    (("GET",), re.compile(rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?"), "list_tree"),
    (("GET", "HEAD"), re.compile(rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), "resolve"),
]


class HubRequestHandler(BaseHTTPRequestHandler):
    """Routes each request to a method returning `(status, body, headers)`; a raised `HubError` becomes its answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect: every answer has a Content-Length

    @property
    def hub(self) -> LocalHub:
        return self.server.hub

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):  # no route: recorded in `hub.unhandled`
        self.dispatch()

    def do_DELETE(self):  # no route: recorded in `hub.unhandled`
        self.dispatch()

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # the request log is `hub.requests`

    def dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query_lists = parse_qs(url.query)
        self.query = {key: values[-1] for key, values in self.query_lists.items()}
        self.hub.requests.append((self.command, url.path))
        try:
            body = self.read_body()
            route = self.find_route(url.path)
            if route is None:
                self.hub.unhandled.append(f"{self.command} {self.path}")
                raise HubError(501, f"The local Hub does not serve {self.command} {url.path}")
            handler, arguments = route
            status, payload, headers = handler(body, **arguments)
        except HubError as error:
            status, payload = error.status, {"error": error.message, **error.extra_body}
            headers = {"X-Error-Message": error.message, **error.headers}
            if error.error_code:
                headers["X-Error-Code"] = error.error_code
        except Exception as error:  # a bug of this server: answer it, and fail the test through `unhandled`
            self.hub.unhandled.append(f"{self.command} {self.path} raised {error!r}")
            status, payload, headers = 500, {"error": f"local Hub bug: {error!r}"}, {}
        self.answer(status, payload, headers)

    def find_route(self, path: str) -> tuple[Callable, dict[str, str]] | None:
        for methods, pattern, name in ROUTES:
            match = pattern.fullmatch(path)
            if match and self.command in methods:
                arguments = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                return getattr(self, name), arguments
        return None

    def read_body(self) -> bytes:
        if "Transfer-Encoding" in self.headers:
            self.hub.unhandled.append(f"{self.command} {self.path} with a chunked body")
            raise HubError(501, "The local Hub reads bodies with a Content-Length only")
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, payload: bytes | dict | list | None, headers: dict[str, str]) -> None:
        if isinstance(payload, (dict, list)):
            payload, headers = json.dumps(payload).encode(), {"Content-Type": "application/json", **headers}
        payload = payload or b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (see `hang_next_commits`)

    @property
    def user(self) -> str | None:
        return self.hub.user_for(self.headers.get("Authorization"))

    # ---- routes ----

    def whoami(self, body: bytes):
        user = require_user(self.user)
        return (
            200,
            {
                "type": "user",
                "id": user,
                "name": user,
                "fullname": user,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": "write"}},
            },
            {},
        )

    def agent_harnesses(self, body: bytes):
        # fetched by the client's user-agent builder: no agent harness is known here
        return 200, {"standardEnvVars": [], "harnesses": {}}, {}

    def create_repo(self, body: bytes):
        request = json.loads(body)
        if request.get("type", "model") != "model":
            raise HubError(400, "The local Hub serves model repos only")
        private = request.get("visibility", "public") == "private" or bool(request.get("private"))
        repo = self.hub.create_repo(require_user(self.user), request["name"], request.get("organization"), private)
        return 200, {"url": f"{self.hub.endpoint}/{repo.repo_id}", "name": repo.repo_id, "id": repo.repo_id}, {}

    def validate_yaml(self, body: bytes):
        try:
            metadata = card_metadata(json.loads(body)["content"].encode())
        except yaml.YAMLError as error:
            return 400, {"errors": [{"message": f"Invalid YAML: {error}"}], "warnings": []}, {}
        if metadata is not None and not isinstance(metadata, dict):
            return 400, {"errors": [{"message": "The metadata must be a YAML mapping"}], "warnings": []}, {}
        return 200, {"errors": [], "warnings": []}, {}

    def space_info(self, body: bytes, repo: str, rev: str = "main"):
        # This Hub holds models only: every Space is missing, as on a mirror without Spaces (the real Hub answers so)
        raise HubError(404, "Repository not found", "RepoNotFound")

    def model_info(self, body: bytes, repo: str, rev: str = "main"):
        with self.hub.lock:
            found = self.hub.readable_repo(repo, self.user)
            commit = found.resolve(rev)
            readme_oid = commit.files.get("README.md")
            metadata = card_metadata(self.hub.read_blob(readme_oid)) if readme_oid else None
            siblings = [self.sibling(path, oid) for path, oid in sorted(commit.files.items())]
        metadata = metadata or {}
        info = {
            "_id": repo,
            "id": repo,
            "modelId": repo,
            "author": found.owner,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": found.created_at,
            "private": found.private,
            "gated": False,
            "disabled": False,
            "tags": metadata.get("tags", []),
            "library_name": metadata.get("library_name"),
            "pipeline_tag": metadata.get("pipeline_tag"),
            "cardData": metadata or None,
            "siblings": siblings,
        }
        requested = self.query_lists.get("expand")
        if requested:
            info = {key: value for key, value in info.items() if key in ("_id", "id") or key in requested}
        return 200, info, {}

    def sibling(self, path: str, oid: str) -> dict:
        if not is_true(self.query.get("blobs")):
            return {"rfilename": path}
        return {"rfilename": path, "blobId": oid, "size": (self.hub.blobs / oid).stat().st_size}

    def preupload(self, body: bytes, repo: str, rev: str):
        with self.hub.lock:
            commit = self.hub.writable_repo(repo, self.user).resolve(rev)
        files = [
            # "regular" for every file: contents come inline with the commit, no LFS or Xet storage
            {
                "path": file["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": commit.files.get(file["path"]),
            }
            for file in json.loads(body)["files"]
        ]
        return 200, {"files": files, "commitOid": commit.oid}, {}

    def commit(self, body: bytes, repo: str, rev: str):
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "A commit starts with a header line")
        self.hub.writable_repo(repo, self.user)
        self.hub.take_commit_fault()
        with self.hub.lock:
            found = self.hub.writable_repo(repo, self.user)
            base = found.resolve(rev)
            header = lines[0]["value"]
            if header.get("parentCommit") and not base.oid.startswith(header["parentCommit"]):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = self.apply_operations(dict(base.files), lines[1:])
            commit = self.hub.new_commit(found, base, files, header["summary"])
            answer = {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self.hub.endpoint}/{repo}/commit/{commit.oid}",
                "hookOutput": "",
            }
            if is_true(self.query.get("create_pr")):
                found.pull_requests.append(commit.oid)
                answer["pullRequestUrl"] = f"{self.hub.endpoint}/{repo}/discussions/{len(found.pull_requests)}"
            else:
                self.move_ref(found, rev, commit)
        return 200, answer, {}

    def apply_operations(self, files: dict[str, str], operations: list[dict]) -> dict[str, str]:
        for operation in operations:
            key, value = operation.get("key"), operation.get("value", {})
            path = value.get("path", "")
            if key == "file":
                files[path] = self.hub.write_blob(base64.b64decode(value["content"]))
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                for inside in [p for p in files if p.startswith(prefix)]:
                    del files[inside]
            else:  # "lfsFile" included: the preupload never asks for LFS
                raise HubError(400, f"The local Hub does not accept {key!r} commit operations")
        return files

    def move_ref(self, repo: Repo, revision: str, commit: Commit) -> None:
        name = revision.removeprefix("refs/heads/")
        if name in repo.branches:
            repo.branches[name] = commit.oid
        elif match := re.fullmatch(r"refs/pr/(\d+)", revision):
            repo.pull_requests[int(match.group(1)) - 1] = commit.oid
        else:
            raise HubError(400, f"Cannot commit on {revision!r}: not a branch")

    def create_branch(self, body: bytes, repo: str, branch: str):
        starting_point = json.loads(body or b"{}").get("startingPoint", "main")
        if branch.startswith("refs/"):
            raise HubError(400, f"Invalid reference for a branch: {branch}")
        with self.hub.lock:
            found = self.hub.writable_repo(repo, self.user)
            if branch in found.branches:
                raise HubError(409, "Reference already exists")
            found.branches[branch] = found.resolve(starting_point).oid
        return 200, {}, {}

    def list_refs(self, body: bytes, repo: str):
        with self.hub.lock:
            found = self.hub.readable_repo(repo, self.user)
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid} for name, oid in found.branches.items()
            ]
            pulls = [
                {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": oid}
                for n, oid in enumerate(found.pull_requests, start=1)
            ]
        answer = {"branches": branches, "converts": [], "tags": []}
        if is_true(self.query.get("include_prs")):
            answer["pullRequests"] = pulls
        return 200, answer, {}

    def list_tree(self, body: bytes, repo: str, rev: str, path: str = ""):
        with self.hub.lock:
            commit = self.hub.readable_repo(repo, self.user).resolve(rev)
            entries = list(tree_entries(commit.files, path.strip("/"), is_true(self.query.get("recursive"))))
            sizes = {oid: (self.hub.blobs / oid).stat().st_size for _, oid in commit.files.items()}
        if path and not entries:
            raise HubError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        listing = [
            {"type": kind, "oid": oid, "size": sizes.get(oid, 0) if kind == "file" else 0, "path": entry_path}
            for kind, entry_path, oid in entries
        ]
        return 200, listing, {}

    def resolve(self, body: bytes, repo: str, rev: str, path: str):
        with self.hub.lock:
            commit = self.hub.readable_repo(repo, self.user).resolve(rev)
            oid = commit.files.get(path)
            if oid is None:
                raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
            content = self.hub.read_blob(oid)
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{oid}"',
            "Content-Length": str(len(content)),
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        return 200, content, headers


def tree_entries(files: dict[str, str], folder: str, recursive: bool) -> Iterator[tuple[str, str, str]]:
    """(kind, path, oid) of the files and folders under `folder` ("" for the root): its direct children, or
    everything below it with `recursive`."""
    prefix = f"{folder}/" if folder else ""
    folders: dict[str, list[str]] = {}
    for path, oid in sorted(files.items()):
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        for depth in range(1, len(parts)):
            folders.setdefault(prefix + "/".join(parts[:depth]), []).append(oid)
        if recursive or len(parts) == 1:
            yield "file", path, oid
    for folder_path, oids in sorted(folders.items()):
        if recursive or "/" not in folder_path[len(prefix) :]:
            yield "directory", folder_path, hashlib.sha1("".join(oids).encode()).hexdigest()


def point_clients_at(hub: LocalHub, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    """Point this process's huggingface_hub (and so transformers) at `hub`, online, with the test user's token.

    huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, when `constants` is imported, and derives other
    constants from them; the module-level `huggingface_hub.api` (behind `huggingface_hub.create_repo` & co.) copied
    the endpoint when it was built. `HfApi()` objects created later and the download functions read the constants at
    call time. Subprocesses read the environment variables set here.
    """
    from huggingface_hub import constants, hf_api

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_URL_HOSTS", constants.HF_URL_HOSTS | {"127.0.0.1"})
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # caches derived from HF_HOME at import time, before tests/conftest.py moved HF_HOME to a temp folder
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir / "hub"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(cache_dir / "agent_harnesses.json"))
    monkeypatch.setattr(hf_api.api, "endpoint", hub.endpoint)
    # transformers keeps one HfApi (`push_to_hub`, downloads) made with the endpoint of its first use: make it anew
    import transformers.utils.hub

    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)


@pytest.fixture
def hub_server(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHub]:
    """A running `LocalHub` that this process's clients talk to; fails the test if a client called an unknown route."""
    hub = LocalHub(tmp_path_factory.mktemp("local_hub")).start()
    point_clients_at(hub, monkeypatch, tmp_path_factory.mktemp("hf_cache"))
    try:
        yield hub
    finally:
        hub.stop()
    assert not hub.unhandled, f"the local Hub was called on routes it does not serve: {hub.unhandled}"
