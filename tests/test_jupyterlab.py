"""JupyterLab serves the suite: a headless `jupyter lab` on a free local port, checked through its REST API.

The server lists every notebook, offers the project's kernel (the venv's interpreter), and opens a session
for each notebook whose kernel comes up idle, runs in the venv with vaestudy importable, in notebooks/.
The server runs with its own runtime, config, data and IPython folders, so it touches nothing of the user's.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

requests = pytest.importorskip("requests")  # a dependency of jupyterlab_server
pytestmark = pytest.mark.slow  # starts a JupyterLab server and a kernel per notebook

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
KERNEL = "python3"  # the Makefile: ipykernel install --sys-prefix --name python3 --display-name "vaestudy (python3)"
START_TIMEOUT, KERNEL_TIMEOUT = 120, 120


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, base: str, token: str, log: Path):
        self.base, self.token, self.log = base, token, log
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def __call__(self, method: str, path: str, expect: int = 200, **kw):
        r = self.http.request(method, f"{self.base}{path}", timeout=30, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text[:300]}\n{self.log_tail()}"
        return r.json() if r.content else None

    def log_tail(self, n: int = 60) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "--- jupyter lab log (tail) ---\n" + "\n".join(lines[-n:])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jupyterlab")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ}
    for var, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_CONFIG_DIR", "config"),
                     ("JUPYTER_DATA_DIR", "data"), ("IPYTHONDIR", "ipython"),
                     ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")):
        env[var] = str(tmp / sub)
        (tmp / sub).mkdir()
    env.pop("JUPYTER_PATH", None)  # kernels come from the venv (sys.prefix), not from a user's extra paths
    log = tmp / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}",
           "--ServerApp.open_browser=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI and this machine run as root
    with open(log, "wb") as logf:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=logf, stderr=subprocess.STDOUT)
    server = Lab(f"http://127.0.0.1:{port}", token, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode} before it was ready\n{server.log_tail()}")
            try:
                if server.http.get(f"{server.base}/api/status", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab not ready on port {port} after {START_TIMEOUT} s\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _connect(lab: Lab, kernel_id: str, timeout: float = KERNEL_TIMEOUT):
    """Open the kernel's websocket, as JupyterLab does on opening a notebook (the server then asks the kernel
    for its info, which is what takes it from "starting" to "idle")."""
    import websocket  # websocket-client, a dependency of jupyter_server

    session = uuid.uuid4().hex
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{lab.base.rsplit(':', 1)[1]}/api/kernels/{kernel_id}/channels?session_id={session}",
        header=[f"Authorization: token {lab.token}"], timeout=timeout)
    return ws, session


def _run(lab: Lab, ws, session: str, code: str, timeout: float = 60) -> str:
    """Execute ``code`` through the kernel websocket; its stdout."""
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": session, "msg_type": "execute_request",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    stdout, reply, idle = [], None, False
    deadline = time.monotonic() + timeout
    while not (reply and idle):
        assert time.monotonic() < deadline, f"no reply from the kernel in {timeout} s\n{lab.log_tail()}"
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "stream" and msg["content"]["name"] == "stdout":
            stdout.append(msg["content"]["text"])
        elif kind == "error":
            pytest.fail(f"kernel error: {msg['content']['ename']}: {msg['content']['evalue']}")
        elif kind == "execute_reply":
            reply = msg["content"]
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    assert reply["status"] == "ok", reply
    return "".join(stdout)


def test_lab_lists_every_notebook(lab):
    listing = lab("GET", "/api/contents/notebooks")
    assert listing["type"] == "directory"
    names = {item["name"] for item in listing["content"]}
    missing = set(NOTEBOOKS) - names
    assert NOTEBOOKS and not missing, f"notebooks missing from the lab's listing: {sorted(missing)}"


def test_lab_offers_the_project_kernel(lab):
    specs = lab("GET", "/api/kernelspecs")
    assert KERNEL in specs["kernelspecs"], f"kernel {KERNEL!r} not offered: {sorted(specs['kernelspecs'])}"
    spec = specs["kernelspecs"][KERNEL]["spec"]
    argv0 = spec["argv"][0]
    assert Path(argv0).is_absolute(), f"kernel {KERNEL} runs {argv0!r}, not a path to the venv's interpreter"
    assert argv0 == sys.executable or os.path.samefile(argv0, sys.executable), \
        f"kernel {KERNEL} runs {argv0}, not this venv's {sys.executable}"
    assert Path(argv0).absolute().parent == Path(sys.executable).absolute().parent, \
        f"kernel {KERNEL} runs {argv0}, outside the venv of {sys.executable}"
    assert spec["language"] == "python"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_lab_opens_each_notebook_on_the_project_kernel(lab, name):
    path = f"notebooks/{name}"
    model = lab("GET", f"/api/contents/{path}", params={"content": 1})
    assert model["type"] == "notebook" and model["format"] == "json"
    assert model["content"]["metadata"]["kernelspec"]["name"] == KERNEL
    session = lab("POST", "/api/sessions", expect=201,
                  json={"path": path, "name": name, "type": "notebook", "kernel": {"name": KERNEL}})
    kernel = session["kernel"]
    try:
        assert kernel["name"] == KERNEL and session["path"] == path
        ws, ws_session = _connect(lab, kernel["id"])
        try:
            deadline = time.monotonic() + KERNEL_TIMEOUT
            while (state := lab("GET", f"/api/kernels/{kernel['id']}")["execution_state"]) != "idle":
                assert state != "dead", f"kernel for {name} died\n{lab.log_tail()}"
                assert time.monotonic() < deadline, \
                    f"kernel for {name} not idle after {KERNEL_TIMEOUT} s (state {state})\n{lab.log_tail()}"
                time.sleep(0.5)
            out = _run(lab, ws, ws_session, "import os, sys, vaestudy\n"
                       "print(sys.prefix); print(vaestudy.__file__); print(os.getcwd())")
        finally:
            ws.close()
        prefix, package, cwd = out.strip().splitlines()
        import vaestudy

        assert os.path.samefile(prefix, sys.prefix), f"kernel runs in {prefix}, not the venv {sys.prefix}"
        assert os.path.samefile(package, vaestudy.__file__), f"kernel imports vaestudy from {package}"
        assert os.path.samefile(cwd, REPO / "notebooks"), f"kernel cwd {cwd}"
    finally:
        lab("DELETE", f"/api/sessions/{session['id']}", expect=204)
    assert all(k["id"] != kernel["id"] for k in lab("GET", "/api/kernels")), "the session's kernel outlived it"
