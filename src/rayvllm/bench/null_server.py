"""A server that does nothing but stream: each completion request gets max_tokens SSE chunks at
once, one socket write each. Against it, `rayvllm bench` measures its own ceiling.

    python -m rayvllm.bench.null_server --port 8765 &
    rayvllm bench --url http://127.0.0.1:8765 --dataset blueprint --concurrency 1,16,64,256
"""

from __future__ import annotations

import argparse
import asyncio
import json

MODELS = b'{"object":"list","data":[{"id":"null","object":"model"}]}'
_TOKEN = (
    b'data: {"id":"cmpl-null","object":"text_completion","model":"null",'
    b'"choices":[{"index":0,"text":" tok","finish_reason":null}],"usage":null}\n\n'
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, itl_s: float) -> None:
    # Raw asyncio HTTP/1.1 with keep-alive: any framework would cost more than the client.
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(":", 1) for line in header_lines if ":" in line)
            length = int({k.lower(): v for k, v in headers.items()}.get("content-length", 0))
            body = await reader.readexactly(length) if length else b""
            if request_line.startswith("GET"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\nserver: rayvllm-null\r\ncontent-type: application/json"
                    b"\r\ncontent-length: %d\r\n\r\n%s" % (len(MODELS), MODELS)
                )
                continue
            tokens = int(json.loads(body or b"{}").get("max_tokens") or 16)
            writer.write(
                b"HTTP/1.1 200 OK\r\nserver: rayvllm-null\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            for _ in range(tokens):
                writer.write(_chunk(_TOKEN))
                await writer.drain()
                await asyncio.sleep(itl_s)  # 0 still lets other streams interleave
            usage = {"prompt_tokens": 1, "completion_tokens": tokens}
            tail = (
                b"data: %s\n\ndata: [DONE]\n\n"
                % json.dumps({"choices": [], "usage": usage}).encode()
            )
            writer.write(_chunk(tail) + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, itl_ms: float = 0.0) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _handle(reader, writer, itl_ms / 1000.0)

    server = await asyncio.start_server(handle, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--itl-ms", type=float, default=0.0, help="Pause between two tokens.")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.itl_ms))


if __name__ == "__main__":
    main()
