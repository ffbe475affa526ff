"""What `make run` promises, end to end: `rayvllm serve` with no config on a local Ray instance
serves the embedded model; the openai client streams a chat answer; the blueprint's /vllm payload
gets readable answers; `rayvllm client` writes results.txt for the 20 prompts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from live import free_port
from raysrv import rayvllm_serve

pytest.importorskip("ray")
pytest.importorskip("vllm")
openai = pytest.importorskip("openai")
pytestmark = [pytest.mark.ray, pytest.mark.vllm]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> object:
    tmp = tmp_path_factory.mktemp("ray-vllm")
    with rayvllm_serve([], port=free_port(), log=tmp / "serve.log", timeout_s=900) as u:
        yield u


def test_openai_client_streams_a_chat_answer(url: str) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
    model = client.models.list().data[0].id
    assert model == "smollm2-135m-instruct"
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is Ray Serve?"}],
        max_tokens=24,
        stream=True,
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len(pieces) > 3 and "".join(pieces).strip()


def test_blueprint_payload_on_vllm_gets_readable_answers(url: str) -> None:
    system = "<<SYS>>\nKeep short answers of no more than 100 sentences.\n<</SYS>>\n\n"
    for question in ("What is generative AI?", "How do transformers work?"):
        prompt = "<s>[INST]" + system + question + "[/INST]"
        r = httpx.post(
            f"{url}/vllm",
            timeout=120,
            json={
                "prompt": prompt,
                "stream": False,
                "max_tokens": 48,
                "temperature": 0.01,
                "top_p": 1,
                "top_k": 20,
                "stop": None,
            },
        )
        assert r.status_code == 200
        answer = r.json()["text"][0][len(prompt) :]
        assert sum(ch.isalpha() for ch in answer) > 20, answer


def test_rayvllm_client_writes_results_for_the_20_prompts(url: str, tmp_path: Path) -> None:
    results, as_json = tmp_path / "results.txt", tmp_path / "results.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rayvllm.cli.main",
            "client",
            "--url",
            url,
            "-o",
            str(results),
            "--json",
            str(as_json),
            "--max-tokens",
            "24",
            "--concurrency",
            "8",
        ],
        check=True,
        timeout=600,
    )
    text = results.read_text()
    assert text.count("Prompt:") == 20 and text.count("=" * 80) >= 20
    assert "Total Prompts: 20" in text
    records = json.loads(as_json.read_text())
    counts = [r["completion_tokens"] for r in records["results"]]
    assert all(isinstance(c, int) and 0 < c <= 24 for c in counts)


def test_metrics_include_vllm_engine_metrics_through_ray(url: str) -> None:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    assert "vllm:num_requests_running" in text and "rayvllm_requests_total" in text
