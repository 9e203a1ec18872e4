"""Batch outputs built from result.json dicts: gradebook CSV/JSON, Gradescope, PrairieLearn, JUnit, Markdown."""

from __future__ import annotations

import csv
import io
import json
from xml.etree import ElementTree as ET

from .model import RESULT_FORMAT_VERSION, leading_first


def exercise_ids(rows: list[dict]) -> list[str]:
    ids: list[str] = []
    for row in rows:
        for exercise in row["exercises"]:
            if exercise["id"] not in ids:
                ids.append(exercise["id"])
    return ids


def gradebook_rows(rows: list[dict]) -> list[dict]:
    ids = exercise_ids(rows)
    table = []
    for row in rows:
        scores = {e["id"]: e["score"] for e in row["exercises"]}
        table.append({
            "submission": row["submission"],
            **{ex: scores.get(ex, 0.0) for ex in ids},
            "total": row["score"], "max_score": row["max_score"],
            "errors": "; ".join(f"{e['kind']}: {e['message']}" for e in leading_first(row["errors"])
                                if e["kind"] != "cell-error"),
            "needs_review": " ".join(tag for e in row["exercises"] for tag in e["needs_review"]),
        })
    return table


def gradebook_csv(rows: list[dict]) -> str:
    table = gradebook_rows(rows)
    out = io.StringIO()
    fields = ["submission", *exercise_ids(rows), "total", "max_score", "errors", "needs_review"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return out.getvalue()


def gradebook_json(rows: list[dict]) -> str:
    return json.dumps({"format_version": RESULT_FORMAT_VERSION, "submissions": gradebook_rows(rows)}, indent=2)


def _check_text(check: dict) -> str:
    text = check["message"]
    if check.get("diagnosis"):
        text += f"\nLikely cause: {check['diagnosis']}"
    if check.get("hint") and not check["passed"]:
        text += f"\nHint: {check['hint']}"
    return text


def gradescope_results(row: dict) -> dict:
    """One submission in Gradescope's autograder results.json format."""
    tests = [{"name": f"{e['id']}: {c['title']}", "score": c["score"], "max_score": c["max_score"],
              "status": "passed" if c["passed"] else "failed", "output": _check_text(c), "visibility": "visible"}
             for e in row["exercises"] for c in e["checks"]]
    output = "\n".join(f"{e['kind']}: {e['message']}" for e in row["errors"])
    return {"score": row["score"], "execution_time": row.get("timing", {}).get("seconds", 0.0),
            "output": output, "tests": tests}


def prairielearn_results(row: dict) -> dict:
    """One submission in PrairieLearn's external grader results.json format (score in [0, 1])."""
    gradable = not any(e["kind"] == "invalid-notebook" for e in row["errors"])
    return {"gradable": gradable, "score": row["score"] / row["max_score"] if row["max_score"] else 0.0,
            "message": "\n".join(e["message"] for e in row["errors"]),
            "tests": [{"name": f"{e['id']}: {c['title']}", "points": c["score"], "max_points": c["max_score"],
                       "message": _check_text(c)} for e in row["exercises"] for c in e["checks"]]}


def junit_xml(rows: list[dict]) -> str:
    """One testsuite per submission, one testcase per check: what CI systems read from pytest."""
    suites = ET.Element("testsuites")
    for row in rows:
        checks = [(e, c) for e in row["exercises"] for c in e["checks"]]
        suite = ET.SubElement(suites, "testsuite", name=row["submission"], tests=str(len(checks)),
                              failures=str(sum(c["status"] == "failed" for _, c in checks)),
                              errors=str(sum(c["status"] == "errored" for _, c in checks)),
                              time=str(row.get("timing", {}).get("seconds", 0.0)))
        for exercise, check in checks:
            case = ET.SubElement(suite, "testcase", classname=f"{row['submission']}.{exercise['id']}", name=check["id"])
            if check["status"] != "passed":
                tag = "failure" if check["status"] == "failed" else "error"
                ET.SubElement(case, tag, message=check["message"][:200]).text = _check_text(check)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def markdown_summary(rows: list[dict], fail_under: float | None = None) -> str:
    ids = exercise_ids(rows)
    lines = ["| submission | " + " | ".join(ids) + " | total |", "|---" * (len(ids) + 2) + "|"]
    for row in rows:
        scores = {e["id"]: f"{e['score']:g}/{e['max_score']:g}" for e in row["exercises"]}
        flag = " ❌" if fail_under is not None and row["score"] < fail_under else ""
        lines.append(f"| {row['submission']} | " + " | ".join(scores.get(e, "") for e in ids)
                     + f" | **{row['score']:g}/{row['max_score']:g}**{flag} |")
    return "\n".join(lines) + "\n"
