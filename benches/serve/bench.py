#!/usr/bin/env python3
"""Concurrent streams against an OpenAI-compatible server (`lfm2vl serve`,
llama.cpp's `llama-server`, ...): for each stream count N, N clients start
together, each streaming one /v1/completions request of a distinct prompt
(temperature 0, `max_tokens` tokens, EOS ignored where the server takes
`ignore_eos`), and the script reports

- aggregate decode tok/s: the streamed chunks of every client while all N
  were streaming (from the last client's first chunk to the first client's
  last), over that time: N concurrent generations' rate;
- per-stream tok/s (median client) and time to first chunk (mean / max).

Standard library only. Usage:
    python3 benches/serve/bench.py --url http://127.0.0.1:8080 --streams 1,2,4,8 \
        --prompt-words 16 --max-tokens 128 [--rounds 2] [--label ours]
"""

import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def stream_one(url, prompt, max_tokens, model, out, start):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({
        "model": model, "prompt": prompt, "max_tokens": max_tokens,
        "temperature": 0, "stream": True, "ignore_eos": True,
    })
    start.wait()
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        out["error"] = f"HTTP {resp.status}: {resp.read()[:300]!r}"
        return
    times = []
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        ev = json.loads(data)
        choices = ev.get("choices") or []
        if choices and choices[0].get("text"):
            times.append(time.perf_counter())
    out.update(t0=t0, times=times)
    conn.close()


def round_of(url, n, words, max_tokens, model, salt):
    start = threading.Event()
    outs = [dict() for _ in range(n)]
    threads = []
    for k in range(n):
        prompt = " ".join(f"w{(salt * 7919 + k * 104729 + i * 31) % 50000 + 2000}" for i in range(words))
        t = threading.Thread(target=stream_one, args=(url, prompt, max_tokens, model, outs[k], start))
        t.start()
        threads.append(t)
    start.set()
    for t in threads:
        t.join()
    for o in outs:
        if "error" in o:
            raise SystemExit(o["error"])
        if len(o["times"]) < 2:
            raise SystemExit("a stream sent fewer than two chunks")
    frm = max(o["times"][0] for o in outs)
    to = min(o["times"][-1] for o in outs)
    in_window = sum(sum(1 for t in o["times"] if frm < t <= to) for o in outs)
    agg = in_window / max(to - frm, 1e-9)
    per = statistics.median((len(o["times"]) - 1) / (o["times"][-1] - o["times"][0]) for o in outs)
    ttft = [o["times"][0] - o["t0"] for o in outs]
    return agg, per, statistics.mean(ttft), max(ttft)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--streams", default="1,2,4,8")
    ap.add_argument("--prompt-words", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--model", default="model")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    counts = [int(s) for s in a.streams.split(",")]
    round_of(a.url, max(counts), a.prompt_words, 8, a.model, 999)  # warm-up
    one = None
    print(f"{a.label} streams  aggregate tok/s  vs 1  per-stream tok/s  ttft mean / max (ms)")
    for n in counts:
        rows = sorted((round_of(a.url, n, a.prompt_words, a.max_tokens, a.model, n * 100 + r)
                       for r in range(a.rounds)), key=lambda r: r[0])
        agg, per, tm, tx = rows[len(rows) // 2]
        if n == 1:
            one = agg
        vs = f"{agg / one:.2f}x" if one else "-"
        print(f"{a.label} {n:>7}  {agg:>15.1f}  {vs:>5}  {per:>16.1f}  {tm * 1e3:>9.1f} / {tx * 1e3:.1f}",
              flush=True)


if __name__ == "__main__":
    main()
