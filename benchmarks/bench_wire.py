"""The wire's cost, leg by leg, on real outcomes: what a correct notebook's probe calls return.

    .venv/bin/python -m benchmarks.bench_wire [--rounds 5] [--secret S]

Each assignment's calls (with figures, as a CLI run plans them) are made once on the reference solution (a
correct notebook's functions); what they returned then crosses the wire as it does in a run, timed per leg:

kernel   the result encoded (``encode_value``) and the outcome packed as a Jupyter message is (JSON)
worker   the message unpacked, checked and re-encoded (``checked_outcome``), worker-result.json written
grader   worker-result.json read and every outcome parsed (``parse_outcome``)

then the same for the largest value the wire carries (``max_elements`` float64 numbers). Figures are CPU time (the
process's own: steadier than the wall clock on a shared machine), the median of ``--rounds``, and the bytes on the
wire (the kernel's messages and worker-result.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from grader import probe_runtime
from grader.assignment import load_assignment
from grader.pipeline import GradingOptions, plan_probes
from grader.wire import call_json, checked_outcome, parse_outcome


def jupyter_pack(obj) -> bytes:
    """As jupyter_client's session packs a message's content."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf8", errors="surrogateescape")


def real_results(name: str, secret: str) -> list:
    """What the reference returns for every call a run plans (a correct notebook's results)."""
    import importlib

    reference = importlib.import_module(f"reference.{name}")
    assignment = load_assignment(name)
    results = []
    for plan in plan_probes(assignment, GradingOptions(secret=secret)):
        for call in plan.probe_calls:
            target = getattr(reference, call.function, None)
            if target is None:
                continue
            fields = call_json(call)
            value, leaves, names = probe_runtime.invoke(target, fields)
            outcome = {"id": call.id, "status": "ok", "seconds": 0.01, "value": value}
            if leaves:
                outcome.update(probe_runtime._gradients(value, leaves, names))
            results.append(outcome)
    return results


def legs(results: list) -> dict[str, float]:
    started = time.process_time()
    messages = []
    for outcome in results:
        node = {**outcome, "value": probe_runtime.encode_value(outcome["value"])}
        messages.append(jupyter_pack(node))
    kernel = time.process_time()
    checked = {}
    for message in messages:
        raw = json.loads(message)
        checked[raw["id"]] = checked_outcome(raw)
    text = json.dumps({"probes": checked})
    worker = time.process_time()
    loaded = json.loads(text)["probes"]
    parsed = [parse_outcome(key, raw) for key, raw in loaded.items()]
    grader = time.process_time()
    assert all(p.status == "ok" for p in parsed), [p for p in parsed if p.status != "ok"][:1]
    return {"kernel": kernel - started, "worker": worker - kernel, "grader": grader - worker,
            "bytes": sum(map(len, messages)) + len(text)}


def report(title: str, results: list, rounds: int) -> None:
    runs = [legs(results) for _ in range(rounds)]
    figures = {leg: statistics.median(r[leg] for r in runs) for leg in ("kernel", "worker", "grader")}
    print(f"{title}: {len(results)} outcomes, {runs[0]['bytes'] / 2**20:.2f} MiB on the wire")
    print("   " + "   ".join(f"{leg} {seconds * 1000:8.2f} ms" for leg, seconds in figures.items())
          + f"   total {sum(figures.values()) * 1000:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--secret", default="benchmark-secret")
    args = parser.parse_args()
    every = []
    for name in ("attention_pooling", "attention_scoring"):
        results = real_results(name, args.secret)
        every += results
        report(name, results, args.rounds)
    report("both assignments", every, args.rounds)
    largest = probe_runtime.WIRE["max_elements"]
    big = np.random.default_rng(0).normal(size=largest)
    report(f"one value of {largest} float64 numbers",
           [{"id": "big", "status": "ok", "seconds": 0.01, "value": big}], max(1, args.rounds // 2))


if __name__ == "__main__":
    main()
