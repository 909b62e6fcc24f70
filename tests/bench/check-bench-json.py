#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs itk-bench (argv[1:]) and checks that it printed one well-formed JSON
document with every section and field a reader of the numbers relies on.
The numbers themselves are not judged: a slow CI machine must not fail."""
import json
import math
import subprocess
import sys

CANCEL_TYPES = ("utility.sleep", "utility.python", "utility.shell")
CANCEL_KEYS = ("runs", "min_ms", "p50_ms", "p99_ms", "max_ms", "mean_ms", "target_p99_ms", "pass")
THROUGHPUT_KEYS = ("steps", "seconds", "steps_per_sec", "target_steps_per_sec", "pass")
MEMORY_KEYS = ("executions", "rss_idle_kb", "rss_paused_kb", "per_execution_kb", "idle_cpu_percent",
               "target_idle_kb", "idle_pass", "target_per_execution_kb", "per_execution_pass")


def fail(message):
    print(f"check-bench-json: {message}", file=sys.stderr)
    sys.exit(1)


def number(section, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(f"{section}.{key} is not a finite number: {value!r}")
    if value < 0:
        fail(f"{section}.{key} is negative: {value!r}")


def check_keys(section, obj, keys):
    if not isinstance(obj, dict):
        fail(f"{section} is not an object")
    for key in keys:
        if key not in obj:
            fail(f"{section} lacks {key}")
        if key.endswith("pass"):
            if not isinstance(obj[key], bool):
                fail(f"{section}.{key} is not a boolean")
        else:
            number(section, key, obj[key])


def main():
    proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        fail(f"itk-bench exited with status {proc.returncode}")
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        fail(f"output is not JSON: {e}")

    if doc.get("benchmark") != "itk-bench":
        fail("no benchmark name")
    if doc.get("errors") != []:
        fail(f"errors reported: {doc.get('errors')!r}")
    if not isinstance(doc.get("targets_met"), bool):
        fail("targets_met is not a boolean")

    cancel = doc.get("cancel")
    if not isinstance(cancel, dict):
        fail("no cancel section")
    for step_type in CANCEL_TYPES:
        check_keys(f"cancel.{step_type}", cancel.get(step_type), CANCEL_KEYS)
        c = cancel[step_type]
        if not c["min_ms"] <= c["p50_ms"] <= c["p99_ms"] <= c["max_ms"]:
            fail(f"cancel.{step_type}: percentiles out of order: {c!r}")
    if cancel.get("leaked_processes") != 0:
        fail(f"cancel.leaked_processes = {cancel.get('leaked_processes')!r}")

    check_keys("throughput", doc.get("throughput"), THROUGHPUT_KEYS)
    check_keys("memory", doc.get("memory"), MEMORY_KEYS)


if __name__ == "__main__":
    main()
