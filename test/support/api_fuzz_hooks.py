"""Schemathesis hooks for test/api-fuzz.test.ts (loaded through SCHEMATHESIS_HOOKS).

- `before_call` plants a canary into every generated `api_key` it can (the body of
  `PUT .../ai-config`, `PUT /api/users/me/ai-defaults` and `ai_config.api_key` of
  `POST /api/workspaces`), in shapes that pass and shapes that fail the key rules, so both the
  stored path and every refusal path see a key that must never come back.
- `no_key_echo` is a check that fails any response carrying the canary, or any 8-character piece of
  its random part (a prefix or suffix of a key counts as an echo too).

The canary comes from RIGBOX_FUZZ_CANARY, e.g. `CANARY<random>`; the test asserts the same on the
server's log and on every response of the HAR report after the run.
"""

from __future__ import annotations

import itertools
import os
import threading

import schemathesis

CANARY = os.environ["RIGBOX_FUZZ_CANARY"]
_RANDOM = CANARY.removeprefix("CANARY")
PIECE = 8
NEEDLES = sorted({CANARY} | {_RANDOM[i : i + PIECE] for i in range(len(_RANDOM) - PIECE + 1)})

# Keys with each provider's prefix (accepted by the shape rules for some provider) and malformed ones
# (empty-ish, wrong type, oversize, with control characters) that take the 400/422 paths.
_SHAPES = (
    lambda generated: f"sk-proj-{CANARY}",
    lambda generated: f"sk-ant-api03-{CANARY}",
    lambda generated: f"AIzaSy{CANARY}",
    lambda generated: f"gsk_{CANARY}",
    lambda generated: f"xai-{CANARY}",
    lambda generated: f"sk-or-v1-{CANARY}",
    lambda generated: CANARY,
    lambda generated: f"{generated}{CANARY}",
    lambda generated: f"  {CANARY}\n",
    lambda generated: f"sk-ant-{CANARY}{'x' * 600}",
    lambda generated: f"sk-{CANARY}\u0000\u001b",
)
# Independent round-robin counters, one per decision (a shared one would correlate them).
_counters = {name: itertools.count() for name in ("add", "shape", "type")}
_lock = threading.Lock()


def _next(name: str) -> int:
    with _lock:
        return next(_counters[name])


def _looks_like_ai_config(value: dict) -> bool:
    return "mode" in value or "provider" in value


def _plant(value: object) -> None:
    if not isinstance(value, dict):
        return
    if "api_key" not in value and _looks_like_ai_config(value) and _next("add") % 2 == 0:
        # Absent means "keep the stored key"; half of those requests send one instead.
        value["api_key"] = ""
    if "api_key" in value:
        current = value["api_key"]
        if isinstance(current, str):
            n = _next("shape")
            # One in twelve keeps the generated key, so the fuzzer's own strings reach the server too.
            if n % (len(_SHAPES) + 1) < len(_SHAPES):
                value["api_key"] = _SHAPES[n % (len(_SHAPES) + 1)](current)
        elif current is not None:
            # A wrong type (negative case); half of them still carry the canary.
            n = _next("type")
            if n % 2 == 0:
                value["api_key"] = [f"sk-ant-api03-{CANARY}"] if n % 4 == 0 else {"key": f"sk-{CANARY}"}
    _plant(value.get("ai_config"))


# The workspace the path parameters point at: other operations need it to stay (DELETE gets its own).
KEEP = os.environ.get("RIGBOX_FUZZ_KEEP_WORKSPACE")


@schemathesis.hook
def before_call(context, case, kwargs):
    _plant(case.body)
    # The stateful phase follows links (GET -> DELETE with the same id) to the kept workspace too.
    if KEEP and case.method.upper() == "DELETE" and (case.path_parameters or {}).get("id") == KEEP:
        case.path_parameters["id"] = "ws_kept_by_the_fuzz_test"


@schemathesis.check
def no_key_echo(ctx, response, case):
    """No response may contain a submitted api_key, or a piece of it."""
    text = response.text or ""
    for needle in NEEDLES:
        if needle in text:
            raise AssertionError("the response echoes (part of) a submitted api_key")
    for name, values in response.headers.items():
        joined = " ".join(values) if isinstance(values, list) else str(values)
        if any(needle in joined for needle in NEEDLES):
            raise AssertionError(f"response header {name} echoes (part of) a submitted api_key")
    return None
